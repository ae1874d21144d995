use super::*;

#[test]
fn a_full_store_sends_objects_back_and_other_stores_still_get_slots() {
    let slots = Slots::new(2);
    let a1 = slots.try_enter("sf|a", "ns/1").unwrap();
    let _a2 = slots.try_enter("sf|a", "ns/2").unwrap();
    assert_eq!(slots.try_enter("sf|a", "ns/3").err(), Some(1));
    assert_eq!(slots.try_enter("sf|a", "ns/4").err(), Some(2));
    // The same object deferred twice counts once.
    assert_eq!(slots.try_enter("sf|a", "ns/3").err(), Some(2));
    let _b = slots
        .try_enter("akv|b", "ns/5")
        .expect("another store is not blocked");

    drop(a1);
    let _a3 = slots
        .try_enter("sf|a", "ns/3")
        .expect("a freed slot is taken");
    assert_eq!(
        slots.try_enter("sf|a", "ns/6").err(),
        Some(2),
        "ns/3 left the backlog"
    );
}

#[test]
fn objects_not_seen_for_long_leave_the_backlog_and_idle_stores_are_dropped() {
    let slots = Slots::new(1);
    let t0 = Instant::now();
    let a = slots.try_enter_at("x", "o1", t0).unwrap();
    assert_eq!(slots.try_enter_at("x", "gone", t0).err(), Some(1));
    assert_eq!(
        slots.try_enter_at("x", "o2", t0 + FORGET_AFTER).err(),
        Some(1)
    );
    let b = {
        drop(a);
        slots.try_enter_at("x", "o2", t0 + FORGET_AFTER).unwrap()
    };
    drop(b);
    let book = lock(&slots.book);
    assert!(book.keys.is_empty());
    assert_eq!(book.held, 0);
}

#[test]
fn a_namespace_gets_at_most_half_the_workers_and_a_store_less_than_its_namespace() {
    let of = |workers, per_namespace, per_store| Shares {
        workers,
        per_namespace,
        per_store,
    };
    // Too few workers to share: everyone gets the one there is.
    assert_eq!(Shares::of(0), of(0, 1, 1));
    assert_eq!(Shares::of(1), of(1, 1, 1));
    assert_eq!(Shares::of(2), of(2, 1, 1));
    assert_eq!(Shares::of(3), of(3, 1, 1));
    assert_eq!(Shares::of(4), of(4, 2, 1));
    assert_eq!(Shares::of(8), of(8, 4, 3));
    assert_eq!(Shares::of(32), of(32, 16, 15));
    for c in 2..=256 {
        let s = Shares::of(c);
        assert!(s.per_store >= 1, "{c}: {s:?}");
        assert!(2 * s.per_namespace <= c, "{c}: {s:?}");
        assert!(s.per_store <= s.per_namespace, "{c}: {s:?}");
        if c >= 4 {
            assert!(s.per_store < s.per_namespace, "{c}: {s:?}");
        }
    }
}

/// Every state the namespaces' slots can reach with `namespaces` namespaces and `workers` workers, entering
/// and leaving in any order, as the holdings per namespace; the runner never runs more than `workers`.
fn reachable(workers: usize, namespaces: usize) -> Vec<Vec<usize>> {
    let per = Shares::of(workers).per_namespace;
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![vec![0; namespaces]];
    while let Some(state) = todo.pop() {
        if !seen.insert(state.clone()) {
            continue;
        }
        let held: usize = state.iter().sum();
        for i in 0..namespaces {
            if held < workers && admits(state[i], held, per, Some(workers)) {
                let mut next = state.clone();
                next[i] += 1;
                todo.push(next);
            }
            if state[i] > 0 {
                let mut next = state.clone();
                next[i] -= 1;
                todo.push(next);
            }
        }
    }
    seen.into_iter().collect()
}

#[test]
fn two_namespaces_holding_all_they_may_leave_a_worker_for_a_third() {
    for workers in 3..=12 {
        let per = Shares::of(workers).per_namespace;
        for state in reachable(workers, 3) {
            let held: usize = state.iter().sum();
            assert!(state.iter().all(|h| *h <= per), "{workers}: {state:?}");
            assert!(held <= workers, "{workers}: {state:?}");
            // Namespaces 0 and 1 hang; 2 arrives holding nothing.
            if state[2] == 0 {
                assert!(
                    held < workers && admits(0, held, per, Some(workers)),
                    "{workers} workers, {state:?}: the third namespace waits"
                );
            }
        }
    }
}

#[test]
fn a_freed_worker_goes_to_a_namespace_holding_none() {
    for workers in 2..=10 {
        let per = Shares::of(workers).per_namespace;
        for state in reachable(workers, 5) {
            let held: usize = state.iter().sum();
            if held < workers {
                continue;
            }
            // Every worker held (more namespaces hang than the reserve covers): one frees, a store deadline on.
            for freed in (0..state.len()).filter(|i| state[*i] > 0) {
                let mut after = state.clone();
                after[freed] -= 1;
                for (i, h) in after.iter().enumerate() {
                    assert_eq!(
                        admits(*h, held - 1, per, Some(workers)),
                        *h == 0,
                        "{workers} workers, {state:?} then {freed} frees: namespace {i}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_reserve_takes_nothing_from_a_namespace_alone_and_one_worker_from_a_pair() {
    for workers in 1..=64 {
        let per = Shares::of(workers).per_namespace;
        let mut alone = 0;
        while admits(alone, alone, per, Some(workers)) {
            alone += 1;
        }
        assert_eq!(alone, per, "{workers} workers, one namespace");
        let mut second = 0;
        while admits(second, alone + second, per, Some(workers)) {
            second += 1;
        }
        let expected = if workers >= 3 {
            per.min(workers - alone - 1)
        } else {
            per.min(workers - alone)
        };
        assert_eq!(second, expected, "{workers} workers, the second namespace");
    }
    // Without a reserve only the share counts; with kube's unlimited runner (0) there is none.
    assert!(admits(3, 1_000, 4, None));
    assert!(!admits(4, 0, 4, None));
    assert_eq!(Slots::namespaces(Shares::of(0), 1).reserve_of, None);
}

#[test]
fn the_namespaces_slots_keep_the_last_worker_for_a_namespace_holding_none() {
    let slots = Slots::namespaces(Shares::of(8), 1);
    let mut a: Vec<Slot> = (0..4)
        .map(|i| slots.try_enter("a", &format!("a/{i}")).unwrap())
        .collect();
    assert_eq!(
        slots.try_enter("a", "a/4").err(),
        Some(1),
        "a's share is half"
    );
    let b: Vec<Slot> = (0..3)
        .map(|i| slots.try_enter("b", &format!("b/{i}")).unwrap())
        .collect();
    assert_eq!(
        slots.try_enter("b", "b/3").err(),
        Some(1),
        "the eighth worker is kept"
    );
    let c = slots
        .try_enter("c", "c/0")
        .expect("a third namespace gets the kept worker");
    assert_eq!(
        slots.try_enter("d", "d/0").err(),
        Some(1),
        "every worker is held"
    );

    drop(a.pop());
    assert!(
        slots.try_enter("a", "a/4").is_err(),
        "a holds three and would take the last"
    );
    assert!(slots.try_enter("b", "b/3").is_err());
    assert!(slots.try_enter("c", "c/1").is_err());
    let _d = slots
        .try_enter("d", "d/0")
        .expect("the freed worker goes to d");
    drop(c);
    drop(b);
    assert_eq!(lock(&slots.book).held, 4, "a's three and d's one");

    // Each runner of its own (`--namespace a,b`): the shares hold, the reserve is never reached.
    let scoped = Slots::namespaces(Shares::of(4), 2);
    let _a: Vec<Slot> = (0..2)
        .map(|i| scoped.try_enter("a", &format!("a/{i}")).unwrap())
        .collect();
    let _b: Vec<Slot> = (0..2)
        .map(|i| scoped.try_enter("b", &format!("b/{i}")).unwrap())
        .collect();
    assert!(scoped.try_enter("b", "b/2").is_err());
}

#[test]
fn the_delay_grows_with_the_backlog_and_is_bounded() {
    assert_eq!(defer_delay(0, 0.5), Duration::from_secs(1));
    assert_eq!(defer_delay(100, 0.5), Duration::from_secs(2));
    assert_eq!(defer_delay(1_000_000, 0.5), Duration::from_secs(60));
    assert_eq!(defer_delay(0, 0.0), Duration::from_millis(500));
    assert!(defer_delay(0, 0.999) < Duration::from_millis(1500));
}
