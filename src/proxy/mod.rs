//! The pingora glue: the `ProxyHttp` implementation, the decision of which requests pixgate
//! examines, origin fetching for those, and response writing. Pixel work lives in
//! [`crate::image`]; this module only moves bytes and headers.

mod avif_budget;
pub(crate) mod budget;
pub(crate) mod candidate;
mod coalesce;
pub(crate) mod conns;
pub(crate) mod deadline;
pub(crate) mod headers;
pub(crate) mod image_path;
mod outcome;
mod refused;
pub(crate) mod respond;
mod revalidate;
mod serve;
mod service;
mod shield;
pub(crate) mod source;
mod state;

pub use service::Pixgate;
pub use state::State;
