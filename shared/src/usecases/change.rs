//! One conditional change of a saga's record, read again and retried when another writer got
//! there first: the loop operator commands and participants' answers share.

use crate::definition::{AnyDefinition, Definitions, SagaDefinition};
use crate::ports::{Clock, SagaStore, StoreError};
use crate::record::Millis;
use crate::stored::Stored;
use crate::table::SagaTable;
use crate::versions::{self, VersionError};

/// How many times a change is tried before the caller is told to send it again.
const ATTEMPTS: usize = 5;

/// The errors a change can end with besides its own.
pub(crate) trait ChangeError: From<StoreError> {
    /// No saga has the id.
    fn missing(id: &str) -> Self;
    /// Another writer won every attempt.
    fn kept_changing() -> Self;
}

/// What a change sees: the orchestrated definition the saga runs under (`None` for a
/// choreographed saga or one whose version cannot be had), the record, and the time.
pub(crate) type Change<'a> = (Option<&'a SagaDefinition>, &'a mut Stored, Millis);

/// Reads the saga `id`, lets `change` edit it (it returns whether there is anything to
/// write), and writes it back on condition that nobody wrote in between. Returns the record
/// as written, or as read when nothing was to be written.
pub(crate) async fn change_record<S: SagaStore, E: ChangeError>(
    table: &SagaTable<S>,
    definitions: &Definitions,
    clock: &impl Clock,
    id: &str,
    mut change: impl FnMut(Change<'_>) -> Result<bool, E>,
) -> Result<Stored, E> {
    for _ in 0..ATTEMPTS {
        let mut record = table.get_bare(id).await?.ok_or_else(|| E::missing(id))?;
        let def = match versions::definition_of(table, definitions, &record).await {
            Ok(AnyDefinition::Orchestrated(def)) => Some(def),
            Ok(AnyDefinition::Choreographed(_)) | Err(VersionError::Unrunnable(_)) => None,
            Err(VersionError::Store(e)) => return Err(e.into()),
        };
        let now = clock.now();
        if !change((def.as_deref(), &mut record, now))? {
            return Ok(record);
        }
        match table.update(&mut record, now).await {
            Ok(_) => return Ok(record),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(E::kept_changing())
}
