//! Imports into herder manifests (docker compose, process-compose, Procfile).
