//! The admin API (`/api/v2/auth/admin/…`): two checks on every call, the gate's permissions
//! table on the path and the role's abilities on the model, as Barong makes them.

mod abilities;
mod users;
mod users_labels;

use crate::resource::bearer;
use crate::support::{Client, Response, Server, TestEnv};

/// A staff member of `role`, signed in, with the Bearer token Envoy would forward.
pub struct Staff {
    pub bearer: String,
}

impl Staff {
    pub async fn new(env: &TestEnv, server: &Server, role: &str) -> Staff {
        let user = env.user(role).await;
        let session = server.login(&user).await;
        let bearer = bearer(server, &session).await;
        Staff { bearer }
    }

    pub async fn get(&self, server: &Server, route: &str) -> Response {
        Client::new()
            .get(server.admin(route))
            .header("authorization", &self.bearer)
            .send()
            .await
    }

    /// A request of any method with a JSON body (`{}` for none).
    pub async fn send(
        &self,
        server: &Server,
        method: &str,
        route: &str,
        body: &serde_json::Value,
    ) -> Response {
        Client::new()
            .request(method, server.admin(route))
            .header("authorization", &self.bearer)
            .json(body)
            .send()
            .await
    }
}
