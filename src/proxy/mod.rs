//! The pingora glue: the `ProxyHttp` implementation, the decision of which requests pixgate
//! examines, origin fetching for those, and response writing. Pixel work lives in
//! [`crate::image`]; this module only moves bytes and headers.

pub mod budget;
pub mod candidate;
pub mod conns;
pub mod deadline;
pub mod headers;
pub mod image_path;
pub mod policy;
pub mod respond;
mod service;
pub mod source;
mod state;

pub use service::Pixgate;
pub use state::State;
