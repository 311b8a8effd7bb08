//! Graph algorithms over the validated rules: cycle finding (task cascades,
//! group references) and the per-task closure of stale controllers.

use std::collections::{HashMap, HashSet, VecDeque};

use super::model::{Reason, TaskRule};

/// Find one cycle in a name graph; returns it as `a -> b -> a`.
pub(super) fn find_cycle<'a>(
    nodes: &[&'a str],
    edges: &HashMap<&'a str, Vec<&'a str>>,
) -> Option<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = nodes.iter().map(|n| (*n, Mark::New)).collect();
    for &start in nodes {
        if marks.get(start) != Some(&Mark::New) {
            continue;
        }
        // iterative DFS: (node, next edge index)
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        marks.insert(start, Mark::Active);
        while let Some(&mut (node, ref mut idx)) = stack.last_mut() {
            let next = edges.get(node).and_then(|e| e.get(*idx)).copied();
            *idx += 1;
            match next {
                None => {
                    marks.insert(node, Mark::Done);
                    stack.pop();
                }
                Some(n) => match marks.get(n).copied() {
                    Some(Mark::New) => {
                        marks.insert(n, Mark::Active);
                        stack.push((n, 0));
                    }
                    Some(Mark::Active) => {
                        let pos = stack.iter().position(|(s, _)| *s == n).unwrap_or(0);
                        let mut names: Vec<&str> = stack[pos..].iter().map(|(s, _)| *s).collect();
                        names.push(n);
                        return Some(names.join(" -> "));
                    }
                    _ => {}
                },
            }
        }
    }
    None
}

/// A cycle among the tasks' `cascades`, as `a -> b -> a`.
pub(super) fn cascade_cycle(tasks: &[TaskRule]) -> Option<String> {
    let edges: HashMap<&str, Vec<&str>> = tasks
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.cascades.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let nodes: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    find_cycle(&nodes, &edges)
}

/// Fill each task's `closure`: every controller it makes stale, its own
/// first, then breadth-first along `cascades`, so each controller's `via` is
/// a shortest cascade path. Expects an acyclic, validated task list.
pub(super) fn compute_closures(tasks: &mut [TaskRule], controllers: &HashMap<String, usize>) {
    let index: HashMap<String, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut closures = Vec::with_capacity(tasks.len());
    for (start, t) in tasks.iter().enumerate() {
        let mut seen_tasks: HashSet<&str> = HashSet::new();
        let mut out: Vec<Reason> = Vec::new();
        let mut queue: VecDeque<(usize, Vec<String>)> =
            VecDeque::from([(start, vec![t.name.clone()])]);
        seen_tasks.insert(&t.name);
        while let Some((ti, via)) = queue.pop_front() {
            let task = &tasks[ti];
            for c in &task.invalidates {
                if let Some(&ci) = controllers.get(c) {
                    if !out.iter().any(|r| r.controller == ci) {
                        out.push(Reason {
                            controller: ci,
                            via: via.clone(),
                        });
                    }
                }
            }
            for next in &task.cascades {
                if let Some(&ni) = index.get(next) {
                    if seen_tasks.insert(&tasks[ni].name) {
                        let mut v = via.clone();
                        v.push(next.clone());
                        queue.push_back((ni, v));
                    }
                }
            }
        }
        closures.push(out);
    }
    for (t, closure) in tasks.iter_mut().zip(closures) {
        t.closure = closure;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph<'a>(
        pairs: &[(&'a str, &[&'a str])],
    ) -> (Vec<&'a str>, HashMap<&'a str, Vec<&'a str>>) {
        let nodes = pairs.iter().map(|(n, _)| *n).collect();
        let edges = pairs.iter().map(|(n, e)| (*n, e.to_vec())).collect();
        (nodes, edges)
    }

    fn task(name: &str, invalidates: &[&str], cascades: &[&str]) -> TaskRule {
        TaskRule {
            name: name.to_string(),
            invalidates: invalidates.iter().map(|s| s.to_string()).collect(),
            cascades: cascades.iter().map(|s| s.to_string()).collect(),
            description: None,
            legacy: false,
            closure: Vec::new(),
            closure_names: Vec::new(),
        }
    }

    #[test]
    fn acyclic_graphs_have_no_cycle() {
        let (nodes, edges) = graph(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[]), ("d", &["a"])]);
        assert_eq!(find_cycle(&nodes, &edges), None);
        assert_eq!(find_cycle(&[], &HashMap::new()), None);
    }

    #[test]
    fn a_cycle_is_named_from_where_it_closes() {
        let (nodes, edges) = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["b"])]);
        assert_eq!(find_cycle(&nodes, &edges).as_deref(), Some("b -> c -> b"));
        let (nodes, edges) = graph(&[("a", &["a"])]);
        assert_eq!(find_cycle(&nodes, &edges).as_deref(), Some("a -> a"));
    }

    #[test]
    fn long_chains_do_not_recurse() {
        let names: Vec<String> = (0..100_000).map(|i| format!("t{i}")).collect();
        let nodes: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut edges: HashMap<&str, Vec<&str>> =
            nodes.windows(2).map(|w| (w[0], vec![w[1]])).collect();
        assert_eq!(find_cycle(&nodes, &edges), None);
        edges.insert(nodes[nodes.len() - 1], vec![nodes[0]]);
        assert!(find_cycle(&nodes, &edges).is_some_and(|c| c.starts_with("t0 -> t1 -> ")));
    }

    #[test]
    fn cascade_cycles_come_from_the_tasks() {
        let mut tasks = vec![task("a", &[], &["b"]), task("b", &[], &[])];
        assert_eq!(cascade_cycle(&tasks), None);
        tasks[1].cascades.push("a".to_string());
        assert_eq!(cascade_cycle(&tasks).as_deref(), Some("a -> b -> a"));
    }

    #[test]
    fn closures_are_breadth_first_with_shortest_paths() {
        // a -> b -> d and a -> c -> d: d's controller is reached once, via b.
        let controllers: HashMap<String, usize> = ["ca", "cb", "cc", "cd"]
            .iter()
            .enumerate()
            .map(|(i, c)| (c.to_string(), i))
            .collect();
        let mut tasks = vec![
            task("a", &["ca"], &["b", "c"]),
            task("b", &["cb", "cd"], &["d"]),
            task("c", &["cc"], &["d"]),
            task("d", &["cd", "ca"], &[]),
        ];
        compute_closures(&mut tasks, &controllers);
        let a: Vec<(usize, Vec<&str>)> = tasks[0]
            .closure
            .iter()
            .map(|r| (r.controller, r.via.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            a,
            [
                (0, vec!["a"]),
                (1, vec!["a", "b"]),
                (3, vec!["a", "b"]),
                (2, vec!["a", "c"]),
            ]
        );
        let d: Vec<usize> = tasks[3].closure.iter().map(|r| r.controller).collect();
        assert_eq!(d, [3, 0]);
    }
}
