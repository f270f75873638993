//! Listing sagas, newest first, from the keys-only indexes.
//!
//! A type's sagas are spread over [`Scope::shards`] index partitions (`LIST_SHARDS`); a page
//! queries the partitions at once, each for at most `limit + 1` keys after the last key of the
//! previous page, merges them by creation time, and reads the records of the page. Filters the index does not hold
//! (status, stalled, and type or task beside a correlation id) are applied to the records read.

use crate::ports::{ListPartition, ListQuery, SagaStore, StoreError};
use crate::record::{Millis, SagaRecord, SagaStatus};

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: usize = 20;
/// Largest page size.
pub const MAX_LIMIT: usize = 100;
/// Index reads made to fill one page when a filter drops records, at most.
const MAX_ROUNDS: usize = 5;

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
    pub sagas: Vec<SagaRecord>,
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
    store: &S,
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
    let keep = |r: &SagaRecord| {
        request.status.is_none_or(|s| r.status == s)
            && request.stalled.is_none_or(|s| r.stalled_at.is_some() == s)
            && request.saga_type.as_ref().is_none_or(|t| &r.saga_type == t)
            && request
                .task_id
                .as_ref()
                .is_none_or(|t| r.task_id.as_ref() == Some(t))
    };
    let mut page: Vec<SagaRecord> = Vec::new();
    let mut after = request.after.clone();
    let mut more = true;
    for _ in 0..MAX_ROUNDS {
        let wanted = request.limit - page.len();
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
            async move { store.list(&query).await }
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
        let mut records = store.get_many(&ids).await?;
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
        let page = list(&MemoryStore::default(), request, &scope)
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
