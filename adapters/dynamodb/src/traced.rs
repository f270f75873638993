//! What the X-Ray subsegment of a DynamoDB operation names besides the operation: its table.

use aws_sdk_dynamodb::operation::{
    batch_get_item::BatchGetItemInput, get_item::GetItemInput, put_item::PutItemInput,
    query::QueryInput, update_item::UpdateItemInput,
};
use saga::xray::Input;

/// The table a DynamoDB operation's input names (the only one, for a batch).
pub(crate) fn table_of(input: &Input) -> Option<String> {
    macro_rules! single_table {
        ($($input:ty),*) => {
            $(if let Some(input) = input.downcast_ref::<$input>() {
                return input.table_name.clone();
            })*
        };
    }
    single_table!(PutItemInput, GetItemInput, UpdateItemInput, QueryInput);
    let tables = input
        .downcast_ref::<BatchGetItemInput>()?
        .request_items
        .as_ref()?;
    let mut names = tables.keys();
    match (names.next(), names.next()) {
        (Some(name), None) => Some(name.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::KeysAndAttributes;

    #[test]
    fn the_table_is_read_from_the_operation_s_input() {
        let put = PutItemInput::builder().table_name("sagas").build().unwrap();
        assert_eq!(table_of(&Input::erase(put)).as_deref(), Some("sagas"));
        let keys = KeysAndAttributes::builder()
            .set_keys(Some(Vec::new()))
            .build()
            .unwrap();
        let batch = BatchGetItemInput::builder()
            .request_items("sagas", keys)
            .build()
            .unwrap();
        assert_eq!(table_of(&Input::erase(batch)).as_deref(), Some("sagas"));
    }
}
