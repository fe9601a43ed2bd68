//! The server over a real socket, on SQLite and PostgreSQL.

use flowgate_server::{AppState, serve};
use flowgate_store::Backend;
use flowgate_store::testing::TestDatabase;

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

async fn health_and_readiness(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let state = AppState::load(db.open().await).await.expect("load");
    let store = state.store.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(state, listener, async {
        let _ = stopped.await;
    }));
    assert_eq!(get(addr, "/healthz").await, (200, "ok".to_owned()));
    assert_eq!(get(addr, "/readyz").await, (200, "ready".to_owned()));
    let (status, body) = get(addr, "/api/v1/register").await;
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"data_items":0,"flows":0,"people":0,"systems":0}"#);
    store.close().await;
    let (status, _) = get(addr, "/readyz").await;
    assert_eq!(status, 503, "not ready once the database is gone");
    let _ = stop.send(());
    server.await.expect("join").expect("graceful shutdown");
    db.drop_database().await;
}

#[tokio::test]
async fn sqlite_health_and_readiness() {
    health_and_readiness(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_health_and_readiness() {
    health_and_readiness(Backend::Postgres).await;
}
