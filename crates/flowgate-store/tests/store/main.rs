//! The store's contract suite: every case runs against SQLite and against PostgreSQL, each on a
//! fresh database of its own. The PostgreSQL half fails, never skips, when it cannot connect.

mod cases;
mod records;

use flowgate_store::Backend;

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::cases::$case(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::cases::$case(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

contract!(
    an_empty_store_loads_an_empty_register_and_verifies,
    applied_records_load_back_identically,
    applying_the_same_records_again_changes_nothing,
    an_update_replaces_the_record_and_its_flow_items,
    a_dangling_reference_is_refused_and_nothing_is_written,
    verify_names_the_event_whose_payload_was_altered,
    verify_names_the_record_whose_row_was_altered_behind_the_log,
    verify_finds_a_row_added_behind_the_log,
    verify_finds_events_removed_from_the_end,
    concurrent_writers_each_append_and_the_chain_holds,
    a_change_larger_than_one_statement_is_written_whole,
    events_are_listed_in_order_from_a_sequence_number,
    requests_raised_at_once_get_one_number_each_and_their_own_events,
    tokens_authenticate_until_revoked_or_expired,
    a_notice_queues_its_messages_with_it_and_each_is_delivered_once,
    sessions_and_sign_ins_expire_and_are_taken_once,
    verify_names_a_request_or_notice_whose_row_was_altered_behind_the_log,
);
