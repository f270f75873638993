//! `POST /sagas/{id}/cancel`, `/redrive`, `/pause` and `/resume` (see
//! [`saga::usecases::command`]).

use super::routes::{Function, Operation, dispatch};
use super::views::SagaView;
use super::{Problem, json_response, parse_saga_id, segments};
use lambda_http::{Body, Request, Response};
use saga::ports::{Clock, SagaStore};
use saga::usecases::command::{self, Command, CommandDeps, CommandError};

/// Routes a request of the command function.
pub async fn handle<S: SagaStore, C: Clock>(
    deps: &CommandDeps<S, C>,
    request: Request,
) -> Response<Body> {
    route(deps, &request)
        .await
        .unwrap_or_else(Problem::into_response)
}

async fn route<S: SagaStore, C: Clock>(
    deps: &CommandDeps<S, C>,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let segments = segments(request);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = request.method().as_str();
    let path = request.uri().path();
    let Some(matched) = dispatch(Function::SagaCommand, method, path, &segments)? else {
        return Err(Problem::not_found(format!("no route for {method} {path}")));
    };
    let command = match matched.route.operation {
        Operation::CancelSaga => Command::Cancel,
        Operation::RedriveSaga => Command::Redrive,
        Operation::PauseSaga => Command::Pause,
        Operation::ResumeSaga => Command::Resume,
        _ => return Err(matched.unhandled()),
    };
    let id = parse_saga_id(matched.param("id"))?;
    let record = command::run(deps, &id, command).await?;
    Ok(json_response(202, &SagaView::from(&record)))
}

impl From<CommandError> for Problem {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::NotFound(_) => Problem::not_found(error.to_string()),
            CommandError::Choreographed | CommandError::Refused(_) => {
                Problem::new(409, error.to_string())
            }
            CommandError::KeptChanging => Problem::unavailable(error.to_string()),
            CommandError::Store(e) => e.into(),
        }
    }
}
