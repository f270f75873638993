//! The overview of one saga type over a window ([`saga_core::stats`]), read from the listing
//! index with a bound on its cost: at most [`MAX_SAGAS`] records, the newest of the window.

use super::list::{ListRequest, MAX_LIMIT, Scope, list};
use crate::ports::{SagaStore, StoreError};
use crate::record::Millis;
use crate::stats::{Overview, overview};
use crate::stored::Stored;
use crate::table::SagaTable;

/// Records one overview reads, at most (in pages of [`MAX_LIMIT`]).
pub const MAX_SAGAS: usize = 1_000;

/// An overview and what it is drawn from.
#[derive(Debug, PartialEq)]
pub struct Stats {
    /// The overview of the sagas read.
    pub overview: Overview,
    /// Records read.
    pub read: usize,
    /// Whether every saga of the window was read; when not, the overview covers the newest
    /// [`MAX_SAGAS`] and starts at `covered_from`.
    pub complete: bool,
    /// The creation time of the oldest saga read, when the window was not read to its start.
    pub covered_from: Option<Millis>,
}

/// The overview of `saga_type`'s sagas created in `[from, to)`.
pub async fn stats<S: SagaStore>(
    table: &SagaTable<S>,
    scope: &Scope,
    saga_type: &str,
    from: Millis,
    to: Millis,
) -> Result<Stats, StoreError> {
    let mut records: Vec<Stored> = Vec::new();
    let mut after = None;
    let complete = loop {
        let request = ListRequest {
            saga_type: Some(saga_type.to_string()),
            created_from: Some(from),
            created_to: Some(to - 1),
            limit: MAX_LIMIT.min(MAX_SAGAS - records.len()),
            after,
            ..Default::default()
        };
        let page = list(table, request, scope).await?;
        records.extend(page.sagas);
        match page.next {
            None => break true,
            Some(_) if records.len() >= MAX_SAGAS => break false,
            next => after = next,
        }
    };
    let covered_from = (!complete)
        .then(|| records.iter().map(|r| r.created_at).min())
        .flatten();
    Ok(Stats {
        overview: overview(records.iter().map(|r| &**r), from, to),
        read: records.len(),
        complete,
        covered_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::record::SagaRecord;
    use crate::table::TableRules;
    use serde_json::json;

    async fn table_with(count: usize) -> SagaTable<MemoryStore> {
        let table = SagaTable::new(MemoryStore::default(), TableRules::default());
        for i in 0..count {
            let id = uuid::Uuid::from_u128(i as u128).to_string();
            let mut record = Stored::from(SagaRecord::fresh(
                id,
                "image",
                ["a"],
                json!({}),
                i as Millis,
            ));
            table.create(&mut record, i as Millis).await.unwrap();
        }
        table
    }

    fn scope() -> Scope {
        Scope {
            types: vec!["image".into()],
            shards: TableRules::default().list_shards,
        }
    }

    #[tokio::test]
    async fn a_window_is_read_whole_when_it_fits_the_bound() {
        let table = table_with(250).await;
        let stats = stats(&table, &scope(), "image", 0, 200).await.unwrap();
        assert_eq!((stats.read, stats.complete), (200, true));
        assert_eq!(stats.overview.sagas, 200);
        assert_eq!(stats.overview.by_status["PENDING"], 200);
        assert_eq!(stats.covered_from, None);
    }

    #[tokio::test]
    async fn a_larger_window_reads_the_newest_up_to_the_bound() {
        let table = table_with(MAX_SAGAS + 50).await;
        let stats = stats(&table, &scope(), "image", 0, 5_000).await.unwrap();
        assert_eq!((stats.read, stats.complete), (MAX_SAGAS, false));
        assert_eq!(stats.covered_from, Some(50));
        assert!(table.store().records_read() <= MAX_SAGAS + MAX_LIMIT);
        let none = super::stats(&table, &scope(), "order", 0, 5_000).await;
        assert_eq!(none.unwrap().overview.sagas, 0);
    }
}
