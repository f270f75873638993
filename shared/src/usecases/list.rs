//! Listing sagas, newest first, from the keys-only indexes.
//!
//! A type's sagas are spread over [`Scope::shards`] index partitions (`LIST_SHARDS`); a page
//! queries the partitions at once, each for at most `limit + 1` keys after the last key of the
//! previous page, merges them by creation time, and reads the records of the page. Filters the index does not hold
//! (status, stalled, and type or task beside a correlation id) are applied to the records read.
//!
//! A request's work is bounded: at most [`MAX_ROUNDS`] rounds and [`MAX_INDEX_QUERIES`] index
//! queries (a round queries all its partitions; the first round always runs), and at most
//! [`MAX_RECORD_READS`] records read. A request that reaches a bound answers what it found,
//! maybe fewer sagas than asked or none, with the cursor of the last key it read.

use crate::ports::{ListPartition, ListQuery, SagaStore, StoreError};
use crate::record::{Millis, SagaStatus};
use crate::stored::Stored;
use crate::table::SagaTable;

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: usize = 20;
/// Largest page size.
pub const MAX_LIMIT: usize = 100;
/// Rounds of index queries made to fill one page when a filter drops records, at most.
pub const MAX_ROUNDS: usize = 5;
/// Index queries one request makes, at most; a round that would pass it is not started.
pub const MAX_INDEX_QUERIES: usize = 64;
/// Saga records one request reads, at most.
pub const MAX_RECORD_READS: usize = 2 * MAX_LIMIT;

/// A listing request.
#[derive(Debug, Default, PartialEq)]
pub struct ListRequest {
    /// Saga type.
    pub saga_type: Option<String>,
    /// Overall status.
    pub status: Option<SagaStatus>,
    /// Stalled (true) or not (false): a RUNNING choreographed saga without events.
    pub stalled: Option<bool>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Task id.
    pub task_id: Option<String>,
    /// Created at or after (epoch ms).
    pub created_from: Option<Millis>,
    /// Created at or before (epoch ms).
    pub created_to: Option<Millis>,
    /// Page size.
    pub limit: usize,
    /// Continue after this (created_at, id).
    pub after: Option<(Millis, String)>,
}

/// One page of a listing.
#[derive(Debug, PartialEq)]
pub struct Page {
    /// The sagas, newest first.
    pub sagas: Vec<Stored>,
    /// The last key of the page (created_at, id) when more may follow.
    pub next: Option<(Millis, String)>,
}

/// What a listing without filters covers: the deployed types, each over its index partitions.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    /// Deployed saga types (a listing without a type filter covers them all).
    pub types: Vec<String>,
    /// Partitions of the listing index per type (`LIST_SHARDS`, as the table writes them).
    pub shards: u32,
}

/// Runs a listing: the partitions to read follow from the most selective filter given.
pub async fn list<S: SagaStore>(
    table: &SagaTable<S>,
    request: ListRequest,
    scope: &Scope,
) -> Result<Page, StoreError> {
    let partitions: Vec<ListPartition> = if let Some(c) = &request.correlation_id {
        vec![ListPartition::Correlation(c.clone())]
    } else if let Some(t) = &request.task_id {
        vec![ListPartition::Task(t.clone())]
    } else {
        let types = match &request.saga_type {
            Some(t) => vec![t.clone()],
            None => scope.types.clone(),
        };
        types
            .iter()
            .flat_map(|t| {
                (0..scope.shards).map(move |s| ListPartition::TypeShard(format!("{t}#{s}")))
            })
            .collect()
    };
    let keep = |r: &Stored| {
        request.status.is_none_or(|s| r.status == s)
            && request.stalled.is_none_or(|s| r.stalled_at.is_some() == s)
            && request.saga_type.as_ref().is_none_or(|t| &r.saga_type == t)
            && request
                .task_id
                .as_ref()
                .is_none_or(|t| r.task_id.as_ref() == Some(t))
    };
    let mut page: Vec<Stored> = Vec::new();
    let mut after = request.after.clone();
    let mut more = true;
    let (mut queries, mut reads) = (0, 0);
    for round in 0..MAX_ROUNDS {
        // Past a bound the loop stops with `more` still set: the cursor continues from `after`.
        if round > 0 && queries + partitions.len() > MAX_INDEX_QUERIES {
            break;
        }
        let wanted = (request.limit - page.len()).min(MAX_RECORD_READS - reads);
        if wanted == 0 {
            break;
        }
        queries += partitions.len();
        let created_to = match &after {
            Some((at, _)) => Some(request.created_to.map_or(*at, |to| to.min(*at))),
            None => request.created_to,
        };
        // Every partition at once: a page costs one round trip, not one per partition.
        let queries = partitions.iter().map(|partition| {
            let query = ListQuery {
                partition: partition.clone(),
                created_from: request.created_from,
                created_to,
                limit: (wanted + 1 + 1) as i32,
            };
            async move { table.list(&query).await }
        });
        let mut keys: Vec<(Millis, String)> = futures_util::future::try_join_all(queries)
            .await?
            .into_iter()
            .flatten()
            .filter(|key| after.as_ref().is_none_or(|a| key < a))
            .collect();
        keys.sort_by(|a, b| b.cmp(a));
        keys.dedup();
        more = keys.len() > wanted;
        keys.truncate(wanted);
        let Some(last) = keys.last().cloned() else {
            more = false;
            break;
        };
        let ids: Vec<String> = keys.iter().map(|(_, id)| id.clone()).collect();
        reads += ids.len();
        let mut records = table.get_many(&ids).await?;
        records.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        page.extend(records.into_iter().filter(keep));
        after = Some(last);
        if page.len() >= request.limit || !more {
            break;
        }
    }
    let next = (more || page.len() >= request.limit)
        .then_some(after)
        .flatten();
    Ok(Page { sagas: page, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::record::SagaRecord;
    use crate::table::TableRules;
    use serde_json::json;

    /// A table with `count` sagas of each type, created a millisecond apart, all PENDING.
    async fn table_with(types: &[&str], count: usize) -> SagaTable<MemoryStore> {
        let table = SagaTable::new(MemoryStore::default(), TableRules::default());
        for (n, saga_type) in types.iter().enumerate() {
            for i in 0..count {
                let at = (n * count + i) as Millis;
                let id = uuid::Uuid::from_u128((n * count + i) as u128).to_string();
                let mut record =
                    Stored::from(SagaRecord::fresh(id, saga_type, ["a"], json!({}), at));
                table.create(&mut record, at).await.unwrap();
            }
        }
        table
    }

    fn scope(types: &[&str]) -> Scope {
        Scope {
            types: types.iter().map(|t| t.to_string()).collect(),
            shards: TableRules::default().list_shards,
        }
    }

    #[tokio::test]
    async fn a_filter_that_matches_nothing_reads_a_bounded_number_of_records() {
        let table = table_with(&["image"], 1_000).await;
        let request = ListRequest {
            status: Some(SagaStatus::Failed),
            limit: MAX_LIMIT,
            ..Default::default()
        };
        let page = list(&table, request, &scope(&["image"])).await.unwrap();
        assert!(page.sagas.is_empty());
        assert_eq!(table.store().records_read(), MAX_RECORD_READS);
        // The cursor goes on after the last saga read: the 200 newest were looked at.
        let next = page.next.expect("a cursor, since sagas remain unread");
        assert_eq!(next.0, (1_000 - MAX_RECORD_READS) as Millis);
    }

    #[tokio::test]
    async fn a_listing_over_many_partitions_makes_a_bounded_number_of_queries() {
        let types = ["image", "order", "campaign", "monitor"];
        let table = table_with(&types, 50).await;
        let request = ListRequest {
            status: Some(SagaStatus::Failed),
            limit: 10,
            ..Default::default()
        };
        let page = list(&table, request, &scope(&types)).await.unwrap();
        let partitions = types.len() * TableRules::default().list_shards as usize;
        assert_eq!(
            table.store().list_queries(),
            partitions * (MAX_INDEX_QUERIES / partitions)
        );
        assert!(table.store().list_queries() <= MAX_INDEX_QUERIES);
        assert!(page.sagas.is_empty() && page.next.is_some());
    }

    #[tokio::test]
    async fn a_page_goes_on_from_the_cursor_of_a_bounded_one() {
        let table = table_with(&["image"], 300).await;
        table
            .store()
            .edit(&uuid::Uuid::from_u128(5).to_string(), |r| {
                r.status = SagaStatus::Failed
            });
        let failed = |after| ListRequest {
            status: Some(SagaStatus::Failed),
            limit: MAX_LIMIT,
            after,
            ..Default::default()
        };
        let first = list(&table, failed(None), &scope(&["image"]))
            .await
            .unwrap();
        assert!(first.sagas.is_empty());
        let second = list(&table, failed(first.next), &scope(&["image"]))
            .await
            .unwrap();
        assert_eq!(second.sagas.len(), 1);
        assert_eq!(second.next, None);
    }

    #[tokio::test]
    async fn a_time_range_that_ends_before_it_starts_lists_nothing() {
        let request = ListRequest {
            created_from: Some(0),
            created_to: Some(-1),
            limit: 5,
            ..Default::default()
        };
        let scope = Scope {
            types: vec!["image".into()],
            shards: 8,
        };
        let page = list(&SagaTable::<MemoryStore>::default(), request, &scope)
            .await
            .unwrap();
        assert_eq!(
            page,
            Page {
                sagas: vec![],
                next: None
            }
        );
    }
}
