//! AWS calls of the set-up and diagnosis commands (`adopt`, `doctor`, `install`), made
//! directly with the SDK ([`bluegreen::Context::sdk`]): they create, copy and inspect whole
//! resources, which the steps never do and the ports ([`bluegreen::ports`]) do not model. The
//! in-memory world does not serve them.

pub mod ecs;
pub mod elb;
pub mod route53;
