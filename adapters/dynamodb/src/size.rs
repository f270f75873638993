//! What DynamoDB counts and refuses: item sizes against the budget, and the errors of a put.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use saga::ports::{ITEM_BUDGET_BYTES, StoreError};
use std::collections::HashMap;

/// Refuses an item over [`ITEM_BUDGET_BYTES`], naming its size; returns the size.
pub(crate) fn check_size(
    item: &HashMap<String, AttributeValue>,
    what: &str,
) -> Result<usize, StoreError> {
    let size = item_size(item);
    if size > ITEM_BUDGET_BYTES {
        return Err(StoreError::Rejected(format!(
            "the {what} would be {size} bytes, over the {ITEM_BUDGET_BYTES}-byte budget of one \
             item (DynamoDB's limit is 400 KB)"
        )));
    }
    Ok(size)
}

/// An item's size as DynamoDB counts it against its item limit: attribute names and values,
/// numbers at most 21 bytes, lists and maps 3 bytes and 1 byte per element more.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => (n.len().div_ceil(2) + 1).min(21),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        _ => 1,
    }
}

/// The longest partition key DynamoDB accepts, in bytes.
pub(crate) const MAX_KEY_BYTES: usize = 2048;

/// A lost condition is a conflict; a request DynamoDB validates and refuses (an item over the
/// size limit, an invalid attribute) is rejected, since sending it again cannot help; the rest
/// may pass later.
pub(crate) fn put_error(error: SdkError<PutItemError>) -> StoreError {
    let service = error.as_service_error();
    if service.is_some_and(|e| e.is_conditional_check_failed_exception()) {
        StoreError::Conflict
    } else if service.and_then(|e| e.code()) == Some("ValidationException") {
        StoreError::Rejected(DisplayErrorContext(error).to_string())
    } else {
        StoreError::Unavailable(DisplayErrorContext(error).to_string())
    }
}
