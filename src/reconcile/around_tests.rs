//! A child's report re-plans only the children it concerns: the effects must be exactly
//! those of re-planning every child. Random scenarios (dependencies with every condition,
//! `restart: true`, targets, replicas, oneshots, start-first replacements, reloads,
//! operator commands and reports of every kind) are fed to two reconcilers, one of them
//! re-planning everything after every report, and every step must agree.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

use super::command::Verb;
use super::core::*;
use crate::manifest::model::Manifest;
use crate::manifest::{ChildSpec, DesiredSet};

/// A small deterministic generator (xorshift64*), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let len = u64::try_from(items.len()).ok()?;
        if len == 0 {
            return None;
        }
        items.get(usize::try_from(self.below(len)).ok()?)
    }
}

const NAMES: [&str; 7] = ["a", "b", "c", "d", "e", "f", "g"];

fn child_spec(name: &str, replica: Option<u32>, manifest: Value) -> Arc<ChildSpec> {
    let manifest: Manifest = serde_json::from_value(manifest).expect("test manifest is valid");
    Arc::new(ChildSpec {
        name: match replica {
            Some(i) => format!("{name}-{i}"),
            None => name.to_owned(),
        },
        replica,
        manifest: Arc::new(manifest),
        source: PathBuf::from("test.yaml"),
        base_dir: PathBuf::from("."),
        secret_digests: BTreeMap::new(),
    })
}

/// A random desired set over [`NAMES`] (each depending only on earlier ones, so no cycle)
/// and a replica set `r`.
fn random_desired(rng: &mut Rng, generation: u64) -> DesiredSet {
    let mut children = BTreeMap::new();
    for (i, name) in NAMES.iter().enumerate() {
        if rng.chance(15) {
            continue;
        }
        let mut dependencies = Vec::new();
        for earlier in NAMES.iter().take(i).chain(["r"].iter()) {
            if rng.chance(30) {
                let condition = *rng.pick(&["started", "ready", "completed"]).expect("3");
                dependencies.push(json!({
                    "name": earlier, "condition": condition, "restart": rng.chance(40)
                }));
            }
        }
        let mut manifest = json!({
            "name": name,
            "dependencies": dependencies,
            "enabled": !rng.chance(8),
        });
        match rng.below(10) {
            0 => manifest["kind"] = json!("target"),
            1 | 2 => {
                manifest["kind"] = json!("oneshot");
                manifest["command"] = json!(["o", rng.below(2).to_string()]);
            }
            _ => {
                manifest["command"] = json!(["s", rng.below(2).to_string()]);
                if rng.chance(40) {
                    manifest["update"] = json!("start-first");
                }
                if rng.chance(30) {
                    manifest["labels"] = json!({"v": rng.below(2).to_string()});
                }
            }
        }
        children.insert((*name).to_owned(), child_spec(name, None, manifest));
    }
    let replicas = rng.below(3);
    let command = json!(["r", rng.below(2).to_string()]);
    for i in 0..replicas {
        let manifest = json!({"name": "r", "command": command, "replicas": replicas});
        let i = u32::try_from(i).expect("small");
        let spec = child_spec("r", Some(i), manifest);
        children.insert(spec.name.clone(), spec);
    }
    DesiredSet {
        generation,
        children,
    }
}

/// Which of a slot's incarnations an input is about, so that the same input names the
/// same incarnation in both reconcilers.
#[derive(Clone, Copy, Debug)]
enum Which {
    Current,
    Next,
    Stopping(usize),
}

fn incarnation(r: &Reconciler, name: &str, which: Which) -> Option<u64> {
    let slot = r.slots().get(name)?;
    match which {
        Which::Current => slot.current.as_ref().map(|run| run.incarnation),
        Which::Next => slot.next.as_ref().map(|run| run.incarnation),
        Which::Stopping(k) => slot.stopping.keys().nth(k).copied(),
    }
}

/// One random input, as a recipe both reconcilers can follow.
#[derive(Clone, Debug)]
enum Recipe {
    Desired(DesiredSet),
    Report(String, Which, Observation),
    Commands(Vec<(String, Verb)>),
    Shutdown,
}

fn random_recipe(rng: &mut Rng, r: &Reconciler, generation: &mut u64) -> Recipe {
    let roll = rng.below(100);
    if roll < 6 {
        *generation += 1;
        return Recipe::Desired(random_desired(rng, *generation));
    }
    if roll < 7 {
        return Recipe::Shutdown;
    }
    let names: Vec<String> = r.slots().keys().cloned().collect();
    if roll < 14 || names.is_empty() {
        let mut all: Vec<String> = r.desired().children.keys().cloned().collect();
        all.extend(names);
        let count = rng.below(3) + 1;
        let commands = (0..count)
            .filter_map(|_| {
                let name = rng.pick(&all)?.clone();
                let verb = match rng.below(4) {
                    0 => Verb::Stop,
                    1 => Verb::Start,
                    2 => Verb::Restart,
                    _ => Verb::Run,
                };
                Some((name, verb))
            })
            .collect();
        return Recipe::Commands(commands);
    }
    let name = rng.pick(&names).expect("not empty").clone();
    let stopping = r.slots().get(&name).map_or(0, |slot| slot.stopping.len());
    let which = match rng.below(4) {
        0 if stopping > 0 => {
            let k = rng.below(u64::try_from(stopping).expect("small"));
            Which::Stopping(usize::try_from(k).expect("small"))
        }
        1 => Which::Next,
        _ => Which::Current,
    };
    let observation = match (which, rng.below(12)) {
        (Which::Stopping(_), 0..=3) => Observation::Exited,
        (Which::Stopping(_), _) => Observation::Stopped,
        (_, 0..=3) => Observation::Spawned,
        (_, 4..=6) => Observation::Ready,
        (_, 7) => Observation::NotReady,
        (_, 8) => Observation::Exited,
        (_, 9) => Observation::Completed,
        (_, 10) => Observation::Failed,
        _ => Observation::Stopped,
    };
    Recipe::Report(name, which, observation)
}

/// Effects in one line: `spawn a#3 stop b#2`, with the spec each spawn or update carries.
fn brief(effects: Result<Vec<Effect>, super::CommandError>) -> String {
    let Ok(effects) = effects else {
        return format!("{effects:?}");
    };
    let brief: Vec<String> = (effects.iter())
        .map(|effect| match effect {
            Effect::Spawn {
                name,
                incarnation,
                spec,
            } => format!("spawn {name}#{incarnation} {:?}", spec.manifest.command),
            Effect::Update {
                name,
                incarnation,
                spec,
            } => format!("update {name}#{incarnation} {:?}", spec.manifest.labels),
            Effect::Stop { name, incarnation } => format!("stop {name}#{incarnation}"),
            Effect::Restart { name, incarnation } => format!("restart {name}#{incarnation}"),
            other => format!("{other:?}"),
        })
        .collect();
    brief.join(" ")
}

/// What `recipe` does to `r`: the effects, or the verdicts and effects of commands.
fn follow(r: &mut Reconciler, recipe: &Recipe) -> Option<String> {
    match recipe {
        Recipe::Desired(desired) => Some(brief(r.step(Input::Desired(desired.clone())))),
        Recipe::Report(name, which, observation) => {
            let incarnation = incarnation(r, name, *which)?;
            Some(brief(r.step(Input::Observed {
                name: name.clone(),
                incarnation,
                observation: observation.clone(),
            })))
        }
        Recipe::Commands(commands) => {
            let commands = commands
                .iter()
                .map(|(name, verb)| verb.on(name.clone()))
                .collect();
            let (verdicts, effects) = r.commands(commands);
            Some(format!("{verdicts:?} {}", brief(Ok(effects))))
        }
        Recipe::Shutdown => Some(brief(r.step(Input::Shutdown {
            reason: "test".into(),
        }))),
    }
}

/// A recipe in one line, for a failure's history.
fn short(recipe: &Recipe) -> String {
    match recipe {
        Recipe::Desired(desired) => {
            let children: Vec<String> = (desired.children.values())
                .map(|spec| {
                    let m = &spec.manifest;
                    let deps: Vec<String> = (m.dependencies.iter())
                        .map(|d| {
                            format!(
                                "{}:{:?}{}",
                                d.0.name,
                                d.0.condition,
                                if d.0.restart { "!" } else { "" }
                            )
                        })
                        .collect();
                    format!(
                        "{} {:?}{} {:?} {:?} {:?} [{}]",
                        spec.name,
                        m.kind,
                        if m.enabled { "" } else { " disabled" },
                        m.command,
                        m.update,
                        m.labels,
                        deps.join(" ")
                    )
                })
                .collect();
            format!(
                "desired {}:\n    {}",
                desired.generation,
                children.join("\n    ")
            )
        }
        other => format!("{other:?}"),
    }
}

/// The slots in one line.
fn names_of(r: &Reconciler) -> String {
    let slots: Vec<String> = (r.slots().iter())
        .map(|(name, slot)| {
            let run = |run: &Option<Run>| {
                run.as_ref()
                    .map(|r| format!("{}:{:?}", r.incarnation, r.phase))
            };
            format!(
                "{name}(cur {:?} next {:?} stopping {:?} hold {:?})",
                run(&slot.current),
                run(&slot.next),
                slot.stopping.keys().collect::<Vec<_>>(),
                slot.hold
            )
        })
        .collect();
    slots.join(", ")
}

/// The state both must agree on, beyond the effects.
fn state(r: &Reconciler) -> String {
    format!("{:?}", r.slots())
}

#[test]
fn a_report_plans_what_a_full_reconciliation_would() {
    for seed in 1..=500u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut local = Reconciler::new();
        let mut full = Reconciler::new();
        full.full_replan = true;
        let mut generation = 1;
        let first = Recipe::Desired(random_desired(&mut rng, generation));
        let mut history = vec![first.clone()];
        assert_eq!(follow(&mut local, &first), follow(&mut full, &first));
        for _ in 0..120 {
            let recipe = random_recipe(&mut rng, &local, &mut generation);
            history.push(recipe.clone());
            let (a, b) = (follow(&mut local, &recipe), follow(&mut full, &recipe));
            if a != b || state(&local) != state(&full) {
                let history: Vec<String> = history.iter().map(short).collect();
                panic!(
                    "seed {seed}:\n{}\nlocal: {a:?}\nfull:  {b:?}\nlocal slots: {}\nfull slots:  {}",
                    history.join("\n"),
                    names_of(&local),
                    names_of(&full)
                );
            }
            if local.is_shutting_down() && rng.chance(20) {
                break;
            }
        }
    }
}
