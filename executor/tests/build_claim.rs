//! Build claims on the real engine: one holder at a time, a dead holder's claim taken over.

#[path = "../../tests/support/skip.rs"]
mod skip;

use pipeline_executor::claim::{self, Claimed};

fn engine_up() -> bool {
    let up = std::process::Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success());
    if !up {
        skip::skip(skip::DOCKER, "no Docker engine answers (scripts/start-services starts one)");
    }
    up
}

#[test]
fn one_holder_at_a_time_and_dead_holders_expire() {
    if !engine_up() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let docker = pipeline_executor::docker::connect().await.unwrap();
        let key =
            format!("{:064x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
        let me = pipeline_executor::target::holder();
        let Claimed::Mine(mine) = claim::claim(&docker, &key, &me).await.unwrap() else {
            panic!("first claim refused")
        };
        // A second run (another holder, alive: this process) is refused and told who holds it.
        match claim::claim(&docker, &key, "ci@runner-7 pid 1").await.unwrap() {
            Claimed::Theirs(h) => assert_eq!(h.holder, me),
            Claimed::Mine(_) => panic!("a held claim was given twice"),
        }
        assert_eq!(claim::list(&docker).await.unwrap().get(&key).map(|h| h.holder.clone()), Some(me.clone()));
        mine.release().await;
        let Claimed::Mine(second) = claim::claim(&docker, &key, "ci@runner-7 pid 1").await.unwrap() else {
            panic!("a released claim was not free")
        };
        // The claim of a process of this host that has ended is taken over at once.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let dead = format!("someone@{} pid 4194303", host.trim());
        drop(second);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let Claimed::Mine(by_dead) = claim::claim(&docker, &key, &dead).await.unwrap() else {
            panic!("dropped claim not released")
        };
        std::mem::forget(by_dead);
        match claim::claim(&docker, &key, &me).await.unwrap() {
            Claimed::Mine(c) => c.release().await,
            Claimed::Theirs(h) => panic!("the claim of a dead process was not taken over: {h}"),
        }
        assert!(!claim::list(&docker).await.unwrap().contains_key(&key));
    });
}

/// A holder on another machine (its process cannot be checked) keeps its claim while it renews it, and
/// loses it a TTL after it stops (a run killed there): short timings stand in for the real ones.
#[test]
fn a_claim_lasts_while_renewed_and_expires_a_ttl_after_the_last_renewal() {
    if !engine_up() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let docker = pipeline_executor::docker::connect().await.unwrap();
        let key = |n: u8| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            format!("{t:062x}{n:02x}")
        };
        let ttl = std::time::Duration::from_secs(3);
        let (renewing, stopped) = (key(1), key(2));
        let renews = claim::Timing { ttl, renew: std::time::Duration::from_millis(500) };
        // Renewals would come after an hour: it stops renewing at once, as a killed run does.
        let never = claim::Timing { ttl, renew: std::time::Duration::from_secs(3600) };
        let Claimed::Mine(held) = claim::claim_with(&docker, &renewing, "ci@elsewhere pid 1", renews).await.unwrap()
        else {
            panic!("first claim refused")
        };
        let Claimed::Mine(dead) = claim::claim_with(&docker, &stopped, "ci@elsewhere pid 2", never).await.unwrap()
        else {
            panic!("first claim refused")
        };
        // Past the TTL (and a second for whole-second clocks).
        tokio::time::sleep(ttl + std::time::Duration::from_millis(1500)).await;
        match claim::claim(&docker, &renewing, "me@here pid 3").await.unwrap() {
            Claimed::Theirs(h) => assert_eq!(h.holder, "ci@elsewhere pid 1"),
            Claimed::Mine(_) => panic!("a claim that is renewed expired"),
        }
        let listed = claim::list(&docker).await.unwrap();
        assert!(listed.contains_key(&renewing), "{listed:?}");
        assert!(!listed.contains_key(&stopped), "a claim past its TTL is not listed: {listed:?}");
        std::mem::forget(dead);
        match claim::claim(&docker, &stopped, "me@here pid 3").await.unwrap() {
            Claimed::Mine(c) => c.release().await,
            Claimed::Theirs(h) => panic!("a claim no longer renewed did not expire: {h}"),
        }
        held.release().await;
    });
}
