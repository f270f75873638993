//! A saga record as the table keeps it: the record, and beside it in the same item the table's
//! own bookkeeping, the write capacity the saga's writes have consumed. That count is no part
//! of the saga (the engine never sees it): the table adds each write's capacity to it, and the
//! saga's answer shows it.

use crate::record::SagaRecord;
use serde_dynamo::Item;
use std::ops::{Deref, DerefMut};

/// The item attribute that keeps [`Stored::capacity_units`] beside the record's own.
pub const CAPACITY_UNITS: &str = "capacity_units";

/// A saga record as read from the table or last written through it, with the write capacity
/// its saga has consumed. It derefs to the record, so readers use it as one.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    /// The saga.
    pub record: SagaRecord,
    /// Write capacity units consumed by the saga's writes: as read, those before the write
    /// that stored the item (a write's own is known only once it is made); after a write
    /// through the table, that one's too, for the next write to store.
    pub capacity_units: f64,
}

impl From<SagaRecord> for Stored {
    /// A record not written yet: nothing consumed.
    fn from(record: SagaRecord) -> Self {
        Self {
            record,
            capacity_units: 0.0,
        }
    }
}

impl Deref for Stored {
    type Target = SagaRecord;

    fn deref(&self) -> &SagaRecord {
        &self.record
    }
}

impl DerefMut for Stored {
    fn deref_mut(&mut self) -> &mut SagaRecord {
        &mut self.record
    }
}

impl Stored {
    /// Reads a record's item (as the AWS SDK or a stream image holds it): the record, and the
    /// capacity kept beside it (none in an item written before it was counted).
    pub fn from_item(item: impl Into<Item>) -> Result<Self, serde_dynamo::Error> {
        let mut item: Item = item.into();
        let capacity_units = match item.remove(CAPACITY_UNITS) {
            Some(units) => serde_dynamo::from_attribute_value(units)?,
            None => 0.0,
        };
        Ok(Self {
            record: serde_dynamo::from_item(item)?,
            capacity_units,
        })
    }
}

/// The item of `record` with `capacity_units` beside it, in the item type of `I` (the AWS
/// SDK's).
pub fn to_item<I: From<Item>>(
    record: &SagaRecord,
    capacity_units: f64,
) -> Result<I, serde_dynamo::Error> {
    let mut item: Item = serde_dynamo::to_item(record)?;
    item.insert(
        CAPACITY_UNITS.to_string(),
        serde_dynamo::to_attribute_value(capacity_units)?,
    );
    Ok(item.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_dynamo::AttributeValue;
    use serde_json::json;

    #[test]
    fn the_capacity_rides_in_the_item_beside_the_record() {
        let record = SagaRecord::fresh("s-1".into(), "image", ["a"], json!({"n": 1}), 1_000);
        let item: Item = to_item(&record, 2.5).unwrap();
        assert_eq!(
            item.get(CAPACITY_UNITS),
            Some(&AttributeValue::N("2.5".into()))
        );
        let read = Stored::from_item(item).unwrap();
        assert_eq!((read.record, read.capacity_units), (record.clone(), 2.5));
        // An item without the attribute reads as nothing consumed.
        let bare: Item = serde_dynamo::to_item(&record).unwrap();
        assert_eq!(Stored::from_item(bare).unwrap(), Stored::from(record));
    }
}
