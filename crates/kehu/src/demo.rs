//! `kehu demo --customers N [--seed S]`: deterministic demo data.
//!
//! A generator thread produces customers in chunks (kehu_core::demo) while
//! this task writes the previous chunk (kehu_store::bulk), so generation and
//! the database work overlap and at most a few chunks are in memory at once.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use kehu_core::demo::{code_floors, DemoConfig, DemoCustomer, DemoGenerator, DemoOwner};
use kehu_core::demo_tags::{demo_tags_of, DEMO_TAG_PATHS};
use kehu_core::tags::TagMode;
use kehu_server::api::dto::UserCreate;
use kehu_store::bulk::{self, BulkLoader};
use kehu_store::tags::NewTag;
use kehu_store::{Store, StoreError};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Customers per chunk: big enough for efficient statements, small enough
/// that a chunk (≈ 11 rows per customer) stays a few megabytes.
const CHUNK: usize = 10_000;

/// The demo's people: (username, display name, role, team).
const DEMO_USERS: &[(&str, &str, &str, Option<&str>)] = &[
    ("chen.jing", "陈静", "sales_manager", Some("华东一组")),
    ("zhang.wei", "张伟", "sales_rep", Some("华东一组")),
    ("li.na", "李娜", "sales_rep", Some("华东一组")),
    ("wang.fang", "王芳", "sales_rep", Some("华南一组")),
    ("liu.yang", "刘洋", "sales_rep", Some("华南一组")),
    ("zhao.min", "赵敏", "sales_rep", Some("华北一组")),
    ("sun.li", "孙丽", "service", None),
];

/// A demo user and, when created now, their one-time password.
struct DemoUser {
    id: i64,
    username: String,
    role: String,
    team: Option<String>,
    password: Option<String>,
}

pub async fn run(db: &str, customers: u64, seed: u64) -> Result<()> {
    if customers < 2 {
        bail!("--customers must be at least 2: the demo always includes C2024001 and C2024002");
    }
    let store = crate::open_store(db).await?;
    for code in ["C2024001", "C2024002"] {
        match store.customer_by_code(code).await {
            Ok(_) => bail!("demo data is already loaded: customer {code} exists in {db}; load the demo into a fresh database"),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e).context("checking for earlier demo data"),
        }
    }
    let today = store.today();
    let taken = bulk::taken(&store)
        .await
        .context("reading existing customer codes")?;
    let users = demo_users(&store).await?;

    let mut cfg = DemoConfig::new(seed, today, customers);
    cfg.owners = users
        .iter()
        .filter(|u| u.role == "sales_rep")
        .map(|u| DemoOwner {
            user_id: u.id,
            team: u.team.clone(),
        })
        .collect();
    cfg.service_user = users.iter().find(|u| u.role == "service").map(|u| u.id);
    cfg.code_floors = code_floors(taken.codes.iter().map(String::as_str));
    cfg.taken_usccs = taken.usccs;

    let started = Instant::now();
    let before = store.max_customer_id().await?;
    let result = load(&store, cfg).await;
    // The passwords are shown whatever happened: the users exist either way.
    print_users(&users);
    let counts = result?;
    let by = users.first().map(|u| u.id).unwrap_or(0);
    let tagged = tag_demo_customers(&store, seed, before, by).await?;
    let touched = demo_campaigns(&store, seed, before, by).await?;
    store
        .refresh_statistics(&[
            "customers",
            "contacts",
            "orders",
            "interactions",
            "customer_tags",
            "rule_tags",
            "rule_tag_changes",
            "tag_history",
            "campaign_touches",
        ])
        .await?;
    println!(
        "demo data loaded in {:.1} s (seed {seed}, as of {today}): {} customers, {} contacts, {} orders, {} interactions ({} rows)",
        started.elapsed().as_secs_f64(),
        counts.customers,
        counts.contacts,
        counts.orders,
        counts.interactions,
        counts.rows()
    );
    println!(
        "tags: {} hand tags on demo customers in {:.1} s; tag rules applied to everyone in {:.1} s ({} tags changed on customers)",
        tagged.assigned,
        tagged.tagging.as_secs_f64(),
        tagged.rules.as_secs_f64(),
        tagged.rule_changes
    );
    println!(
        "campaigns: {} with {touched} customers touched",
        kehu_core::demo_campaigns::DEMO_CAMPAIGNS.len()
    );
    store.db.close().await;
    Ok(())
}

/// The demo's campaigns (one or two per channel) and whom each touched
/// among the customers just loaded (ids above `before`).
async fn demo_campaigns(store: &Store, seed: u64, before: i64, by: i64) -> Result<u64> {
    use kehu_core::demo_campaigns::{demo_campaign, demo_touch, DEMO_CAMPAIGNS};
    let today = store.today();
    let last = store.max_customer_id().await?;
    let mut touched = 0;
    for k in 0..DEMO_CAMPAIGNS.len() {
        let Some(input) = demo_campaign(today, k) else {
            continue;
        };
        let data = input
            .validate()
            .map_err(|e| anyhow::anyhow!("demo campaign {k}: {e:?}"))?;
        let campaign = store
            .create_campaign(&data, by)
            .await
            .map_err(|e| crate::one_line(e.into()))
            .with_context(|| format!("creating demo campaign {}", data.name))?;
        // Customers by the day (from the start) they were touched.
        let mut by_day: std::collections::BTreeMap<u64, Vec<i64>> = Default::default();
        for id in before + 1..=last {
            if let Some(d) = demo_touch(seed, k, id) {
                by_day.entry(d).or_default().push(id);
            }
        }
        for (d, ids) in by_day {
            let on = data.starts_on + chrono::Days::new(d);
            touched += store
                .add_touches(campaign.id, &ids, on, by)
                .await
                .context("recording demo campaign touches")?;
        }
    }
    Ok(touched)
}

async fn load(store: &Store, cfg: DemoConfig) -> Result<bulk::BulkCounts> {
    let today = cfg.today;
    let mut generator = DemoGenerator::new(cfg);
    let total = generator.total();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<DemoCustomer>>(2);
    let producer = std::thread::spawn(move || loop {
        let chunk = generator.next_chunk(CHUNK);
        // A closed channel means the loader gave up: stop generating.
        if chunk.is_empty() || tx.blocking_send(chunk).is_err() {
            break;
        }
    });

    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} [{wide_bar}] {human_pos}/{human_len} customers, eta {eta} {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));

    let outcome = async {
        let mut loader = BulkLoader::begin(store, today, total)
            .await
            .context("starting the load")?;
        while let Some(chunk) = rx.recv().await {
            loader.load(&chunk).await.context("writing demo data")?;
            bar.inc(chunk.len() as u64);
            bar.set_message(format!("({} rows)", loader.counts().rows()));
        }
        bar.set_message("committing…");
        loader.finish().await.context("committing demo data")
    }
    .await;
    drop(rx);
    let _ = producer.join();
    bar.finish_and_clear();
    outcome
}

/// The demo users, created if missing (plus `admin` on a database without
/// users, since `kehu serve` only creates one when there are none).
async fn demo_users(store: &Store) -> Result<Vec<DemoUser>> {
    let mut wanted: Vec<(&str, &str, &str, Option<&str>)> = Vec::new();
    if store.user_count().await? == 0 {
        wanted.push(("admin", "管理员", "admin", None));
    }
    wanted.extend_from_slice(DEMO_USERS);
    let mut out = Vec::new();
    for (username, display, role, team) in wanted {
        match store.auth_user_by_name(username).await {
            Ok(au) => out.push(DemoUser {
                id: au.user.id,
                username: au.user.username,
                role: au.user.role,
                team: au.user.team,
                password: None,
            }),
            Err(StoreError::NotFound) => {
                let created = kehu_server::api::users::create_user(
                    store,
                    UserCreate {
                        username: username.into(),
                        display_name: Some(display.into()),
                        role: role.into(),
                        team: team.map(str::to_string),
                        password: None,
                    },
                )
                .await
                .map_err(crate::one_line)
                .with_context(|| format!("creating demo user {username}"))?;
                out.push(DemoUser {
                    id: created.user.id,
                    username: created.user.username,
                    role: created.user.role,
                    team: created.user.team,
                    password: created.initial_password,
                });
            }
            Err(e) => return Err(e).with_context(|| format!("looking up user {username}")),
        }
    }
    Ok(out)
}

fn print_users(users: &[DemoUser]) {
    println!("demo users (one-time passwords are shown only now; each must be changed at first sign-in):");
    for u in users {
        let password = u
            .password
            .as_deref()
            .unwrap_or("(existing user, password unchanged)");
        println!(
            "  {:<10} {:<14} {:<8} {password}",
            u.username,
            u.role,
            u.team.as_deref().unwrap_or("-")
        );
    }
}

/// What tagging the demo did.
struct Tagged {
    assigned: u64,
    tagging: Duration,
    rule_changes: u64,
    rules: Duration,
}

/// The demo's extra tags (about a hundred with the presets), hand tags on
/// the customers just loaded (ids above `before`) with a realistic skew,
/// then every tag rule applied to everyone.
async fn tag_demo_customers(store: &Store, seed: u64, before: i64, by: i64) -> Result<Tagged> {
    let started = Instant::now();
    // Ids by full path, read once and kept as tags are added.
    let c = store.tag_catalogue().await?;
    let mut ids: HashMap<String, i64> = c
        .nodes()
        .filter(|n| n.merged_into.is_none())
        .map(|n| (c.path_text(n.id), n.id))
        .collect();
    for path in DEMO_TAG_PATHS {
        if ids.contains_key(*path) {
            continue;
        }
        let (parent, name) = match path.rsplit_once('/') {
            Some((p, n)) => (ids.get(p).copied(), n),
            None => (None, *path),
        };
        let t = NewTag {
            parent_id: parent,
            name: name.to_string(),
            mode: TagMode::Manual,
            description: None,
            rule: None,
        };
        let created = store
            .create_tag(&t, by)
            .await
            .map_err(|e| crate::one_line(e.into()))
            .with_context(|| format!("creating demo tag {path}"))?;
        ids.insert(path.to_string(), created.id);
    }
    let c = store.tag_catalogue().await?;
    let hand: Vec<i64> = c
        .nodes()
        .filter(|n| n.mode == TagMode::Manual && n.merged_into.is_none())
        .filter(|n| c.children_of(Some(n.id)).next().is_none())
        .map(|n| n.id)
        .collect();
    let last = store.max_customer_id().await?;
    let mut assigned = 0;
    let mut first = before + 1;
    while first <= last {
        let end = (first + 50_000 - 1).min(last);
        let pairs: Vec<(i64, i64)> = (first..=end)
            .flat_map(|id| {
                demo_tags_of(seed, id, &hand)
                    .into_iter()
                    .map(move |t| (id, t))
            })
            .collect();
        assigned += store
            .bulk_tag(&pairs, "manual")
            .await
            .context("tagging demo customers")?;
        first = end + 1;
    }
    let tagging = started.elapsed();
    let started = Instant::now();
    let settings = kehu_server::Settings::offline("");
    let state = kehu_server::AppState::new(store.clone(), settings);
    let runs = kehu_server::api::tags::apply_rules(&state, None)
        .await
        .map_err(crate::one_line)
        .context("applying tag rules")?;
    Ok(Tagged {
        assigned,
        tagging,
        rule_changes: runs.iter().map(|r| r.added + r.removed + r.proposed).sum(),
        rules: started.elapsed(),
    })
}
