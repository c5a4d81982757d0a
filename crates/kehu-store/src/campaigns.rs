//! Marketing campaigns and the customers each touched, and what the
//! campaign report reads: the touched customers' orders in the attribution
//! span, their first orders, and the untouched customers' baseline.
//!
//! *Invariant*: a customer is touched by a campaign at most once (its
//! first recorded touch day stays); touches are added in one transaction.

use crate::db::{decode_n, Arg, Exec, RowGet, IDS_PER_QUERY};
use crate::error::StoreError;
use crate::{args, Store};
use chrono::{DateTime, NaiveDate, Utc};
use kehu_core::campaign::{Baseline, CampaignData, Channel, OrderSeen};
use kehu_core::{Reason, ValidationErrors};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A stored campaign with how many customers it touched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    pub id: i64,
    #[serde(flatten)]
    pub data: CampaignData,
    pub touched: i64,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "c.id, c.name, c.channel, c.starts_on, c.ends_on, c.cost_fen, c.window_days, \
     c.description, c.created_by, c.created_at, \
     (SELECT COUNT(*) FROM campaign_touches t WHERE t.campaign_id = c.id) AS touched";

fn decode(r: &dyn RowGet) -> Result<Campaign, sqlx::Error> {
    let date = |col: &str| -> Result<NaiveDate, sqlx::Error> {
        r.opt_date(col)?
            .ok_or_else(|| sqlx::Error::Decode(format!("{col} is empty").into()))
    };
    Ok(Campaign {
        id: r.int("id")?,
        data: CampaignData {
            name: r.text("name")?,
            channel: Channel::parse(&r.text("channel")?)
                .map_err(|_| sqlx::Error::Decode("unknown channel".into()))?,
            starts_on: date("starts_on")?,
            ends_on: date("ends_on")?,
            cost_fen: r.opt_int("cost_fen")?,
            window_days: r.int("window_days")?,
            description: r.opt_text("description")?,
        },
        touched: r.int("touched")?,
        created_by: r.opt_int("created_by")?,
        created_at: r.time("created_at")?,
    })
}

impl Store {
    /// A new campaign; a name in use is refused on `name`.
    pub async fn create_campaign(&self, d: &CampaignData, by: i64) -> Result<Campaign, StoreError> {
        let mut tx = self.db.begin().await?;
        let id = tx
            .fetch_one(
                "INSERT INTO campaigns (name, channel, starts_on, ends_on, cost_fen, window_days, description, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id AS n",
                args![
                    d.name.as_str(),
                    d.channel.key(),
                    d.starts_on,
                    d.ends_on,
                    d.cost_fen,
                    d.window_days,
                    d.description.as_deref(),
                    by,
                    Utc::now()
                ],
                decode_n,
            )
            .await
            .map_err(|e| match e.unique_violation() {
                Some(_) => StoreError::Invalid(ValidationErrors::single("name", Reason::Duplicate)),
                None => e,
            })?;
        let sql = format!("SELECT {COLUMNS} FROM campaigns c WHERE c.id = $1");
        let c = tx.fetch_one(&sql, args![id], decode).await?;
        tx.commit().await?;
        Ok(c)
    }

    /// Every campaign, the latest start first.
    pub async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM campaigns c ORDER BY c.starts_on DESC, c.id DESC");
        self.db.clone().fetch_all(&sql, vec![], decode).await
    }

    pub async fn campaign(&self, id: i64) -> Result<Campaign, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM campaigns c WHERE c.id = $1");
        self.db
            .clone()
            .fetch_optional(&sql, args![id], decode)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Records that `campaign` touched `customers` on `on`; customers it
    /// touched already keep their day. Returns how many were new.
    pub async fn add_touches(
        &self,
        campaign: i64,
        customers: &[i64],
        on: NaiveDate,
        by: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.db.begin().await?;
        let mut added = 0;
        for part in customers.chunks(IDS_PER_QUERY / 4) {
            let values: Vec<String> = (0..part.len())
                .map(|i| {
                    let b = 4 * i + 1;
                    format!("(${b}, ${}, ${}, ${})", b + 1, b + 2, b + 3)
                })
                .collect();
            let sql = format!(
                "INSERT INTO campaign_touches (campaign_id, customer_id, touched_on, added_by) VALUES {} \
                 ON CONFLICT (campaign_id, customer_id) DO NOTHING",
                values.join(", ")
            );
            let mut a: Vec<Arg> = Vec::with_capacity(part.len() * 4);
            for &c in part {
                a.extend([
                    Arg::from(campaign),
                    Arg::from(c),
                    Arg::from(on),
                    Arg::from(by),
                ]);
            }
            added += tx.execute(&sql, a).await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Each touched customer and its day.
    pub async fn touches(&self, campaign: i64) -> Result<BTreeMap<i64, NaiveDate>, StoreError> {
        let rows = self
            .db
            .clone()
            .fetch_all(
                "SELECT customer_id, touched_on FROM campaign_touches WHERE campaign_id = $1",
                args![campaign],
                |r: &dyn RowGet| Ok((r.int("customer_id")?, r.opt_date("touched_on")?)),
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(c, d)| d.map(|d| (c, d)))
            .collect())
    }

    /// The touched customers' orders from `from` to `to` (inclusive), and
    /// each one's first order day ever.
    pub async fn touched_orders(
        &self,
        campaign: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(Vec<OrderSeen>, HashMap<i64, NaiveDate>), StoreError> {
        let mut db = self.db.clone();
        let orders = db
            .fetch_all(
                "SELECT o.customer_id, o.ordered_on, o.amount_fen FROM orders o \
                 JOIN campaign_touches t ON t.customer_id = o.customer_id AND t.campaign_id = $1 \
                 WHERE o.ordered_on >= $2 AND o.ordered_on <= $3",
                args![campaign, from, to],
                |r: &dyn RowGet| {
                    Ok(OrderSeen {
                        customer_id: r.int("customer_id")?,
                        on: r.opt_date("ordered_on")?.unwrap_or_default(),
                        amount_fen: r.int("amount_fen")?,
                    })
                },
            )
            .await?;
        let first = db
            .fetch_all(
                "SELECT o.customer_id, MIN(o.ordered_on) AS first_on FROM orders o \
                 JOIN campaign_touches t ON t.customer_id = o.customer_id AND t.campaign_id = $1 \
                 GROUP BY o.customer_id",
                args![campaign],
                |r: &dyn RowGet| Ok((r.int("customer_id")?, r.opt_date("first_on")?)),
            )
            .await?;
        Ok((
            orders,
            first
                .into_iter()
                .filter_map(|(c, d)| d.map(|d| (c, d)))
                .collect(),
        ))
    }

    /// The customers the campaign did not touch that existed before `to`
    /// ended, and how many of them ordered from `from` to `to`.
    pub async fn campaign_baseline(
        &self,
        campaign: i64,
        from: NaiveDate,
        to: NaiveDate,
        existed_before: DateTime<Utc>,
    ) -> Result<Baseline, StoreError> {
        let mut db = self.db.clone();
        let customers = db
            .fetch_one(
                "SELECT COUNT(*) AS n FROM customers c WHERE c.created_at < $1 AND NOT EXISTS \
                 (SELECT 1 FROM campaign_touches t WHERE t.campaign_id = $2 AND t.customer_id = c.id)",
                args![existed_before, campaign],
                decode_n,
            )
            .await?;
        let ordered = db
            .fetch_one(
                "SELECT COUNT(DISTINCT o.customer_id) AS n FROM orders o JOIN customers c ON c.id = o.customer_id \
                 WHERE o.ordered_on >= $1 AND o.ordered_on <= $2 AND c.created_at < $3 AND NOT EXISTS \
                 (SELECT 1 FROM campaign_touches t WHERE t.campaign_id = $4 AND t.customer_id = o.customer_id)",
                args![from, to, existed_before, campaign],
                decode_n,
            )
            .await?;
        Ok(Baseline { customers, ordered })
    }
}
