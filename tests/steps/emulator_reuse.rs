//! The test harness hands a used emulator to the next test after a reset: that test must see
//! an empty AWS, and whatever the previous test still sends must not land in it.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use bluegreen_tests::Emulator;

async fn create_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) {
    dynamodb
        .create_table()
        .table_name(name)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("k")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("k")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
}

#[tokio::test]
async fn a_reset_emulator_holds_nothing_of_the_test_before_and_refuses_its_late_calls() {
    let first = Emulator::start().await;
    let old_endpoint = first.endpoint.clone();
    // A client of the previous test, which may still call after its test ended.
    let late = aws_sdk_dynamodb::Client::new(&first.sdk_config().await);
    create_table(&late, "left-behind").await;

    let second = first.renewed().await;

    assert_ne!(
        second.endpoint, old_endpoint,
        "a reset serves on a new port"
    );
    let fresh = aws_sdk_dynamodb::Client::new(&second.sdk_config().await);
    let tables = fresh.list_tables().send().await.expect("list tables");
    assert!(
        tables.table_names().is_empty(),
        "the next test sees the previous test's tables: {:?}",
        tables.table_names()
    );
    // The previous test's late call reaches nothing.
    let late_call = late.list_tables().send().await;
    assert!(
        late_call.is_err(),
        "a call to the retired port was answered: {late_call:?}"
    );
    create_table(&fresh, "mine").await;
    let tables = fresh.list_tables().send().await.expect("list tables");
    assert_eq!(tables.table_names(), ["mine"]);
}
