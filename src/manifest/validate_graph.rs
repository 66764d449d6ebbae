//! The dependency graph's cycles: which children lie on one (Tarjan), and one shortest
//! cycle per strongly connected component, for the diagnostics of `check_set`.

use std::collections::VecDeque;
use std::collections::hash_map::Entry;

use foldhash::{HashMap, HashMapExt};

/// One cycle per strongly connected component with more than one child: a list of
/// `(node, index of its dependency on the next node)`, starting at the smallest name.
pub(super) fn find_cycles(
    names: &[&str],
    edges: &[Vec<(usize, usize)>],
) -> Vec<Vec<(usize, usize)>> {
    // Only a node on a cycle can start one: finding those first keeps a set without
    // cycles (the usual one) linear, instead of a search from every node.
    let on_cycle = on_cycle(edges);
    let mut starts: Vec<usize> = (0..names.len()).filter(|&node| on_cycle[node]).collect();
    starts.sort_unstable_by_key(|&node| names[node]);
    let mut cycles = Vec::new();
    let mut covered = vec![false; names.len()];
    for start in starts {
        if covered[start] {
            continue;
        }
        // Breadth-first search from `start` back to itself gives a shortest cycle through it.
        let mut parent: HashMap<usize, (usize, usize)> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut closed = None;
        'search: while let Some(node) = queue.pop_front() {
            for &(next, index) in &edges[node] {
                if next == start {
                    closed = Some((node, index));
                    break 'search;
                }
                if let Entry::Vacant(entry) = parent.entry(next) {
                    entry.insert((node, index));
                    queue.push_back(next);
                }
            }
        }
        let Some((mut node, mut index)) = closed else {
            continue;
        };
        let mut cycle = Vec::new();
        loop {
            cycle.push((node, index));
            if node == start {
                break;
            }
            let Some(&(prev, prev_index)) = parent.get(&node) else {
                break;
            };
            (node, index) = (prev, prev_index);
        }
        cycle.reverse();
        if cycle.iter().any(|&(node, _)| covered[node]) {
            continue;
        }
        for &(node, _) in &cycle {
            covered[node] = true;
        }
        cycles.push(cycle);
    }
    cycles
}

/// Which nodes lie on a cycle: the members of strongly connected components with more than
/// one node (the graph has no self-loops). Tarjan's algorithm, with an explicit stack so
/// that a long chain of dependencies cannot overflow the thread's.
fn on_cycle(edges: &[Vec<(usize, usize)>]) -> Vec<bool> {
    const UNSEEN: usize = usize::MAX;
    let mut order = vec![UNSEEN; edges.len()];
    let mut low = vec![0; edges.len()];
    let mut on_stack = vec![false; edges.len()];
    let mut on_cycle = vec![false; edges.len()];
    let mut stack = Vec::new();
    // `(node, how many of its edges are explored)`: the recursion of the textbook version.
    let mut calls: Vec<(usize, usize)> = Vec::new();
    let mut seen = 0;
    for root in 0..edges.len() {
        if order[root] != UNSEEN {
            continue;
        }
        order[root] = seen;
        low[root] = seen;
        seen += 1;
        stack.push(root);
        on_stack[root] = true;
        calls.push((root, 0));
        while let Some(call) = calls.last_mut() {
            let node = call.0;
            if let Some(&(next, _)) = edges[node].get(call.1) {
                call.1 += 1;
                if order[next] == UNSEEN {
                    order[next] = seen;
                    low[next] = seen;
                    seen += 1;
                    stack.push(next);
                    on_stack[next] = true;
                    calls.push((next, 0));
                } else if on_stack[next] {
                    low[node] = low[node].min(order[next]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(caller, _)) = calls.last() {
                low[caller] = low[caller].min(low[node]);
            }
            if low[node] != order[node] {
                continue;
            }
            // `node` is the root of a component: the stack from `node` up.
            let alone = stack.last() == Some(&node);
            while let Some(member) = stack.pop() {
                on_stack[member] = false;
                on_cycle[member] = !alone;
                if member == node {
                    break;
                }
            }
        }
    }
    on_cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_found_once_with_their_path() {
        // Nodes in an order other than their names', to show that names decide.
        let names = ["d", "c", "b", "a", "e"];
        let (a, b, c, d, e) = (3, 2, 1, 0, 4);
        let mut edges = vec![Vec::new(); names.len()];
        edges[a] = vec![(b, 0)];
        edges[b] = vec![(c, 1)];
        edges[c] = vec![(a, 0), (e, 1)];
        edges[d] = vec![(a, 0)];
        let cycles = find_cycles(&names, &edges);
        assert_eq!(cycles, vec![vec![(a, 0), (b, 1), (c, 0)]]);
        assert_eq!(on_cycle(&edges), [false, true, true, true, false]);
    }
}
