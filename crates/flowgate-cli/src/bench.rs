//! `flowgate bench check`: the principles engine's speed on the register in the database, beside
//! the same assessments made by SQL queries against the same database, in the same run.
//! `flowgate bench authz`: the cost of a Cedar authorization decision, beside an assessment.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use flowgate_core::policy::{self, Access, Request};
use flowgate_core::register::{RecordKind, Register};
use flowgate_core::{DataItemId, Email};
use flowgate_store::Store;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::Outcome;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Index build time and memory, assessment latency from the index, and the same assessments
    /// by SQL queries; on the register in the database (see `flowgate generate`).
    Check(CheckOptions),
    /// The cost of one authorization decision by the Cedar policy (an IAO approving a request,
    /// the entities built from the register each time, as the API does), beside an assessment of
    /// the same request from the index in the same run.
    Authz(AuthzOptions),
    /// The database's raw rate of single-row inserts, each its own durable commit, from many
    /// connections at once: the baseline for requests raised per second through the API.
    Insert(InsertOptions),
    /// Impact analysis (who is downstream of a system) from the index, beside the same question
    /// asked of the database as a recursive SQL query, in the same run.
    Impact(ImpactOptions),
}

#[derive(Debug, Args)]
pub struct ImpactOptions {
    /// Times the hub's full impact is computed (by the index and by the CSR baseline).
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Times the hub's impact is asked of the database by the recursive SQL query (it is slow).
    #[arg(long, default_value_t = 3)]
    sql_runs: usize,
    /// Random systems whose impact to `--depth` is timed against the index.
    #[arg(long, default_value_t = 1_000)]
    systems: usize,
    /// The depth the random systems' impact follows to.
    #[arg(long, default_value_t = 3)]
    depth: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Args)]
pub struct InsertOptions {
    /// Concurrent writers.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// How long to insert for.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[derive(Debug, Args)]
pub struct AuthzOptions {
    /// Decisions timed.
    #[arg(long, default_value_t = 100_000)]
    decisions: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Args)]
pub struct CheckOptions {
    /// Assessments timed against the index.
    #[arg(long, default_value_t = 200_000)]
    requests: usize,
    /// Assessments timed against the database (each takes a dozen queries).
    #[arg(long, default_value_t = 2_000)]
    sql_requests: usize,
    /// How many times the index is built from the store.
    #[arg(long, default_value_t = 3)]
    builds: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub async fn run(store: &Store, cmd: &BenchCommand) -> anyhow::Result<Outcome> {
    match cmd {
        BenchCommand::Check(o) => check(store, o).await,
        BenchCommand::Authz(o) => authz(store, o).await,
        BenchCommand::Insert(o) => insert(store, o).await,
        BenchCommand::Impact(o) => impact(store, o).await,
    }
}

/// Resident memory of this process, from /proc (Linux), in bytes.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

/// Requests of three items, most from their authority (as most real requests are), some not.
fn requests(reg: &Register, n: usize, seed: u64) -> anyhow::Result<Vec<Request>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let systems = reg.systems();
    let items = reg.data_items();
    anyhow::ensure!(
        systems.len() >= 2 && items.len() >= 3,
        "the register is too small to benchmark"
    );
    let people = reg.people();
    let mut by_authority: std::collections::HashMap<&str, Vec<&DataItemId>> = Default::default();
    for d in items {
        if let Some(a) = &d.authoritative_system {
            by_authority.entry(a.as_str()).or_default().push(&d.id);
        }
    }
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let first = &items[rng.random_range(0..items.len())];
        let source = match &first.authoritative_system {
            Some(a) if rng.random_bool(0.8) => a.clone(),
            _ => systems[rng.random_range(0..systems.len())].id.clone(),
        };
        let target = systems[rng.random_range(0..systems.len())].id.clone();
        if target == source {
            continue;
        }
        // The other two items mostly from the same authority, as a real request's would be.
        let siblings = by_authority.get(source.as_str()).filter(|s| s.len() >= 3);
        let mut data_items: std::collections::BTreeSet<DataItemId> = [first.id.clone()].into();
        while data_items.len() < 3 {
            let next = match siblings {
                Some(s) if rng.random_bool(0.9) => s[rng.random_range(0..s.len())].clone(),
                _ => items[rng.random_range(0..items.len())].id.clone(),
            };
            data_items.insert(next);
        }
        out.push(Request {
            requester: people
                .get(rng.random_range(0..people.len().max(1)))
                .map_or_else(
                    || Email::parse("someone@uni.example"),
                    |p| Ok(p.email.clone()),
                )
                .context("requester")?,
            justification: "benchmark".into(),
            source,
            target,
            data_items,
            intended_use: "benchmark".into(),
            access: Access::ReadOnly,
        });
    }
    Ok(out)
}

async fn check(store: &Store, o: &CheckOptions) -> anyhow::Result<Outcome> {
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).context("date")?;
    println!("flowgate bench check ({:?} store)", store.backend());

    // 1. Building the index from the store.
    let mut builds = Vec::new();
    let mut register = Register::new();
    let mut rss_delta = 0;
    for _ in 0..o.builds.max(1) {
        drop(std::mem::take(&mut register));
        let before = rss().unwrap_or(0);
        let t = Instant::now();
        register = store.load_register().await?;
        builds.push(t.elapsed());
        rss_delta = rss().unwrap_or(0).saturating_sub(before);
    }
    builds.sort();
    let flows = register.len(RecordKind::Flow);
    anyhow::ensure!(
        flows > 0,
        "the register has no flows: generate one and import it first (see the README's Performance section)"
    );
    println!(
        "register: {} systems, {} data items, {} flows, {} people",
        register.len(RecordKind::System),
        register.len(RecordKind::DataItem),
        flows,
        register.len(RecordKind::Person)
    );
    println!(
        "index build from the store: median {:.2} s of {} builds (min {:.2} s)",
        builds[builds.len() / 2].as_secs_f64(),
        builds.len(),
        builds[0].as_secs_f64()
    );
    println!(
        "index memory for flows: {:.0} bytes per flow (the flow index's allocations); resident growth while building: {:.0} bytes per flow",
        register.flow_index_bytes() as f64 / flows as f64,
        rss_delta as f64 / flows as f64
    );

    // 2. Assessments from the index, one at a time, on this thread.
    let reqs = requests(&register, o.requests, o.seed)?;
    let mut times = Vec::with_capacity(reqs.len());
    let mut outcomes = [0usize; 3];
    for r in &reqs {
        let t = Instant::now();
        let a = policy::assess(&register, r, as_of);
        times.push(t.elapsed());
        outcomes[a.outcome as usize] += 1;
    }
    times.sort();
    let index_mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "assess (index), {} requests of 3 items: p50 {}, p99 {}, mean {} (outcomes: {} proceed, {} needs review, {} rejected)",
        times.len(),
        micros(percentile(&times, 0.5)),
        micros(percentile(&times, 0.99)),
        micros(index_mean),
        outcomes[0],
        outcomes[1],
        outcomes[2]
    );

    // 3. The same assessments, the facts fetched by SQL queries.
    let mut sql_times = Vec::with_capacity(o.sql_requests);
    for r in reqs.iter().take(o.sql_requests) {
        let t = Instant::now();
        let facts = store.facts_for(r).await?;
        let a = policy::assess(&facts, r, as_of);
        sql_times.push(t.elapsed());
        let from_index = policy::assess(&register, r, as_of);
        anyhow::ensure!(
            a == from_index,
            "the SQL baseline disagrees with the index on {r:?}:\n{a:#?}\n{from_index:#?}"
        );
    }
    sql_times.sort();
    let sql_mean = sql_times.iter().sum::<Duration>() / sql_times.len().max(1) as u32;
    println!(
        "assess (SQL queries), {} requests: p50 {}, p99 {}, mean {} (every decision identical to the index's)",
        sql_times.len(),
        micros(percentile(&sql_times, 0.5)),
        micros(percentile(&sql_times, 0.99)),
        micros(sql_mean)
    );
    println!(
        "ratio: the index is {:.0}x faster at p50 and {:.0}x faster on the mean than SQL queries",
        percentile(&sql_times, 0.5).as_secs_f64() / percentile(&times, 0.5).as_secs_f64(),
        sql_mean.as_secs_f64() / index_mean.as_secs_f64()
    );
    Ok(Outcome::Ok)
}

/// Times `f` over `items`, one at a time: sorted durations.
fn timed<T>(items: &[T], mut f: impl FnMut(&T) -> bool) -> (Vec<Duration>, usize) {
    let mut times = Vec::with_capacity(items.len());
    let mut yes = 0;
    for i in items {
        let t = Instant::now();
        yes += usize::from(std::hint::black_box(f(i)));
        times.push(t.elapsed());
    }
    times.sort();
    (times, yes)
}

async fn authz(store: &Store, o: &AuthzOptions) -> anyhow::Result<Outcome> {
    use flowgate_authz::{Authz, RequestAction};
    use flowgate_core::workflow::{self, ActionName, RequestId};
    let now = chrono::Utc::now();
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).context("date")?;
    println!("flowgate bench authz ({:?} store)", store.backend());
    let register = store.load_register().await?;
    let policy = Authz::builtin()?;
    let reqs = requests(&register, o.decisions, o.seed)?;
    // Each request awaiting approval, asked about by the IAO of its source: the question the
    // API asks most, with the most entities (person, roles, both systems and their people).
    let cases: Vec<(workflow::SharingRequest, Email)> = reqs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut s = workflow::raise(
                RequestId::from_number(i as i64 + 1),
                r.clone(),
                None,
                &r.requester,
                now,
            )
            .map_err(anyhow::Error::from)?
            .request;
            s.state = workflow::State::AwaitingApproval;
            let who = register
                .system(r.source.as_str())
                .and_then(|sys| sys.owner.clone())
                .unwrap_or_else(|| r.requester.clone());
            Ok((s, who))
        })
        .collect::<anyhow::Result<_>>()?;
    let (assess_times, _) = timed(&reqs, |r| {
        policy::assess(&register, r, as_of).outcome == policy::Outcome::Proceed
    });
    let mut failed = None;
    let (decide_times, allowed) = timed(&cases, |(r, who)| {
        match policy.decide_request(&register, who, RequestAction::Step(ActionName::Approve), r) {
            Ok(d) => d.allowed,
            Err(e) => {
                failed.get_or_insert(e);
                false
            }
        }
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    // Every step at once, as a request's page asks which actions its viewer may take.
    let steps: Vec<RequestAction> = ActionName::ALL
        .iter()
        .map(|a| RequestAction::Step(*a))
        .collect();
    let (each_times, _) = timed(&cases[..cases.len().min(20_000)], |(r, who)| {
        policy
            .decide_request_each(&register, who, &steps, r)
            .is_ok_and(|d| d.iter().any(|d| d.allowed))
    });
    let mean = |t: &[Duration]| t.iter().sum::<Duration>() / t.len().max(1) as u32;
    println!(
        "authorize (Cedar, {} policies), {} decisions: p50 {}, p99 {}, mean {} ({} allowed)",
        policy.len(),
        decide_times.len(),
        micros(percentile(&decide_times, 0.5)),
        micros(percentile(&decide_times, 0.99)),
        micros(mean(&decide_times)),
        allowed
    );
    println!(
        "authorize all {} steps of a request at once (entities built once): p50 {}, p99 {}",
        steps.len(),
        micros(percentile(&each_times, 0.5)),
        micros(percentile(&each_times, 0.99))
    );
    println!(
        "assess (index), the same {} requests: p50 {}, p99 {}",
        assess_times.len(),
        micros(percentile(&assess_times, 0.5)),
        micros(percentile(&assess_times, 0.99))
    );
    println!(
        "ratio: a decision costs {:.1}x an assessment at p50",
        percentile(&decide_times, 0.5).as_secs_f64() / percentile(&assess_times, 0.5).as_secs_f64()
    );
    Ok(Outcome::Ok)
}

/// Single-row inserts into a scratch table, each committed on its own, on the store's own pool
/// (so with the same connection settings and durability as every other write).
async fn insert(store: &Store, o: &InsertOptions) -> anyhow::Result<Outcome> {
    let pool = store.pool().clone();
    sqlx::query("DROP TABLE IF EXISTS flowgate_bench_insert")
        .execute(&pool)
        .await?;
    sqlx::query("CREATE TABLE flowgate_bench_insert (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let body = "x".repeat(600); // about the size of a request's row
    let mut tasks = Vec::new();
    for c in 0..o.connections.max(1) {
        let (pool, body) = (pool.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut n: i64 = 0;
            while Instant::now() < deadline {
                sqlx::query("INSERT INTO flowgate_bench_insert (id, body) VALUES ($1, $2)")
                    .bind(c as i64 * 1_000_000_000 + n)
                    .bind(&body)
                    .execute(&pool)
                    .await?;
                n += 1;
            }
            Ok::<i64, sqlx::Error>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    sqlx::query("DROP TABLE flowgate_bench_insert")
        .execute(&pool)
        .await?;
    println!(
        "raw single-row inserts ({:?}), {} connections, {} s: {} rows, {:.0} rows/s",
        store.backend(),
        o.connections,
        o.seconds,
        total,
        total as f64 / o.seconds as f64
    );
    Ok(Outcome::Ok)
}

/// Each system's least depth downstream of `start`, by a recursive query: how a database-backed
/// catalogue answers lineage.
async fn impact_by_sql(
    store: &Store,
    start: &str,
    depth: u32,
) -> anyhow::Result<std::collections::BTreeMap<String, i64>> {
    let rows = sqlx::query(
        "WITH RECURSIVE reach(system, depth) AS ( \
           SELECT CAST($1 AS TEXT), CAST(0 AS BIGINT) \
           UNION \
           SELECT f.target, r.depth + 1 FROM reach r JOIN flows f ON f.source = r.system \
           WHERE f.status = 'active' AND r.depth < $2) \
         SELECT system, MIN(depth) AS depth FROM reach WHERE system <> $1 GROUP BY system",
    )
    .bind(start)
    .bind(i64::from(depth))
    .fetch_all(store.pool())
    .await?;
    use sqlx::Row;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("system")?,
                r.try_get::<i64, _>("depth")?,
            ))
        })
        .collect()
}

/// The physical floor of impact analysis: a breadth-first search over the same active edges laid
/// out as compressed sparse rows (one array of targets, one of offsets), computing each system's
/// depth and nothing else.
struct Csr {
    offsets: Vec<u32>,
    targets: Vec<u32>,
    ix: std::collections::HashMap<String, u32>,
}

impl Csr {
    fn build(register: &Register) -> Csr {
        let systems = register.systems();
        let ix: std::collections::HashMap<String, u32> = systems
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.to_string(), i as u32))
            .collect();
        let mut edges: Vec<(u32, u32)> = register
            .flows()
            .filter(|f| f.is_active())
            .map(|f| (ix[f.source().id.as_str()], ix[f.target().id.as_str()]))
            .collect();
        edges.sort_unstable();
        let mut offsets = vec![0u32; systems.len() + 1];
        for &(s, _) in &edges {
            offsets[s as usize + 1] += 1;
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        Csr {
            offsets,
            targets: edges.into_iter().map(|(_, t)| t).collect(),
            ix,
        }
    }

    /// Each system's depth from `start` (`u32::MAX`: not reached).
    fn bfs(&self, start: u32) -> Vec<u32> {
        let mut depth = vec![u32::MAX; self.offsets.len() - 1];
        depth[start as usize] = 0;
        let mut frontier = vec![start];
        let mut next = Vec::new();
        let mut d = 0;
        while !frontier.is_empty() {
            d += 1;
            next.clear();
            for &s in &frontier {
                let edges =
                    self.offsets[s as usize] as usize..self.offsets[s as usize + 1] as usize;
                for &t in &self.targets[edges] {
                    if depth[t as usize] == u32::MAX {
                        depth[t as usize] = d;
                        next.push(t);
                    }
                }
            }
            std::mem::swap(&mut frontier, &mut next);
        }
        depth
    }
}

fn p50_p99(times: &[Duration]) -> String {
    format!(
        "p50 {}, p99 {}",
        micros(percentile(times, 0.5)),
        micros(percentile(times, 0.99))
    )
}

async fn impact(store: &Store, o: &ImpactOptions) -> anyhow::Result<Outcome> {
    use flowgate_core::impact::{self, ImpactOptions as Walk};
    println!("flowgate bench impact ({:?} store)", store.backend());
    let register = store.load_register().await?;
    let systems = register.systems();
    anyhow::ensure!(!systems.is_empty(), "the register has no systems");
    let csr = Csr::build(&register);

    // The hub: the system with the most active flows out.
    let hub = systems
        .iter()
        .max_by_key(|s| {
            register
                .flows_out_of(s.id.as_str())
                .filter(|f| f.is_active())
                .count()
        })
        .map(|s| s.id.as_str())
        .unwrap_or_default();
    let full = Walk::default();
    let found = impact::downstream(&register, hub, &full).context("the hub is in the register")?;
    let floor = csr.bfs(csr.ix[hub]);
    let by_csr: std::collections::BTreeMap<&str, u32> = floor
        .iter()
        .enumerate()
        .filter(|&(i, &d)| d != u32::MAX && d > 0 && systems[i].id.as_str() != hub)
        .map(|(i, &d)| (systems[i].id.as_str(), d))
        .collect();
    let by_index: std::collections::BTreeMap<&str, u32> = (0..found.len())
        .map(|i| found.system(i))
        .map(|(s, d)| (s.id.as_str(), d))
        .collect();
    anyhow::ensure!(
        by_csr == by_index,
        "the CSR search disagrees with the index on {hub}"
    );
    let flows: usize = (0..found.len()).map(|i| found.flow_count(i)).sum();
    let max_depth = found.max_depth();
    println!(
        "hub '{hub}': {} systems affected, through {flows} flows, to depth {max_depth}",
        found.len()
    );
    drop(found);
    let runs: Vec<()> = vec![(); o.runs.max(1)];
    // Interleaved, so both see the same machine.
    let mut index_times = Vec::new();
    let mut page_times = Vec::new();
    let mut csr_times = Vec::new();
    for _ in &runs {
        let t = Instant::now();
        let n = impact::downstream(&register, hub, &full).map_or(0, |a| a.len());
        index_times.push(t.elapsed());
        std::hint::black_box(n);
        let t = Instant::now();
        let page: usize = impact::downstream(&register, hub, &full).map_or(0, |a| {
            (0..a.len().min(100)).map(|i| a.get(i).flows.len()).sum()
        });
        page_times.push(t.elapsed());
        std::hint::black_box(page);
        let t = Instant::now();
        let d = csr.bfs(csr.ix[hub]);
        csr_times.push(t.elapsed());
        std::hint::black_box(d);
    }
    index_times.sort();
    page_times.sort();
    csr_times.sort();
    println!(
        "  full impact (index), {} runs: {}",
        runs.len(),
        p50_p99(&index_times)
    );
    println!(
        "  full impact and its first page of 100 with their flows: {}",
        p50_p99(&page_times)
    );
    println!(
        "  CSR breadth-first search (the floor): {}",
        p50_p99(&csr_times)
    );
    println!(
        "  ratio: the index takes {:.2}x the CSR search at p50 ({:.2}x with the first page)",
        percentile(&index_times, 0.5).as_secs_f64() / percentile(&csr_times, 0.5).as_secs_f64(),
        percentile(&page_times, 0.5).as_secs_f64() / percentile(&csr_times, 0.5).as_secs_f64()
    );
    // A recursive query must be bounded to stop on cycles. Bounded at the depth the index found,
    // it cannot know that nothing lies further; one level more is the least a query that has to
    // find the end must explore — which is what the walk itself does. Both are timed.
    for bound in [max_depth, max_depth + 1] {
        let mut sql_times = Vec::new();
        for _ in 0..o.sql_runs {
            let t = Instant::now();
            let by_sql = impact_by_sql(store, hub, bound).await?;
            sql_times.push(t.elapsed());
            let same = by_sql.len() == by_index.len()
                && by_sql.iter().all(|(s, d)| {
                    by_index
                        .get(s.as_str())
                        .is_some_and(|x| i64::from(*x) == *d)
                });
            anyhow::ensure!(
                same,
                "the recursive query disagrees with the index on {hub}"
            );
        }
        if sql_times.is_empty() {
            break;
        }
        sql_times.sort();
        println!(
            "  recursive SQL bounded at depth {bound}{}, {} runs: p50 {} (answers identical to the index's); the index is {:.0}x faster at p50",
            if bound == max_depth {
                " (where the index found the end)"
            } else {
                " (one level more, to find the end)"
            },
            sql_times.len(),
            micros(percentile(&sql_times, 0.5)),
            percentile(&sql_times, 0.5).as_secs_f64() / percentile(&index_times, 0.5).as_secs_f64()
        );
    }

    // Systems picked at random, to a bounded depth: the everyday question.
    let mut rng = SmallRng::seed_from_u64(o.seed);
    let sample: Vec<&str> = (0..o.systems.max(1))
        .map(|_| systems[rng.random_range(0..systems.len())].id.as_str())
        .collect();
    let walk = Walk {
        data_items: Vec::new(),
        max_depth: Some(o.depth),
    };
    let mut sizes = 0usize;
    let (times, _) = timed(&sample, |s| {
        let n = impact::downstream(&register, s, &walk).map_or(0, |a| a.len());
        sizes += n;
        n > 0
    });
    println!(
        "{} random systems to depth {} (index): {}, max {} (on average {:.0} systems affected)",
        times.len(),
        o.depth,
        p50_p99(&times),
        micros(times[times.len() - 1]),
        sizes as f64 / times.len() as f64
    );
    Ok(Outcome::Ok)
}
