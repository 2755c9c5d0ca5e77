//! The admin API (`/api/v2/auth/admin/…`): two checks on every call, the gate's permissions
//! table on the path and the role's abilities on the model, as Barong makes them.

mod abilities;
mod activities;
mod api_keys;
mod explain;
mod metrics;
mod permissions;
mod profiles;
mod restrictions;
mod roles;
mod users;
mod users_labels;

use crate::resource::bearer;
use crate::support::{Client, Response, Server, TestEnv, TestUser};

/// A staff member of `role`, signed in, with the Bearer token Envoy would forward.
pub struct Staff {
    pub bearer: String,
}

impl Staff {
    pub async fn new(env: &TestEnv, server: &Server, role: &str) -> Staff {
        Staff::new_as(server, &env.user(role).await).await
    }

    /// `user`, signed in as staff.
    pub async fn new_as(server: &Server, user: &TestUser) -> Staff {
        let session = server.login(user).await;
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

    /// `method` on `route` (a query string included), with `body` as JSON unless it is null.
    pub async fn send(
        &self,
        server: &Server,
        method: &str,
        route: &str,
        body: &serde_json::Value,
    ) -> Response {
        let request = Client::new()
            .request(method, server.admin(route))
            .header("authorization", &self.bearer)
            .header("user-agent", crate::support::UA);
        if body.is_null() {
            request.send().await
        } else {
            request.json(body).send().await
        }
    }
}
