//! ferrograph's Pregel core: channels, version-based scheduling, supersteps and the
//! application of writes. It knows nothing of Python: host values travel through it as an
//! opaque type `V`, and host callbacks (reducers, nodes) are plain Rust closures.

pub mod channels;
pub mod driver;
pub mod error;
pub mod graph;
pub mod ids;
pub mod retry;
pub mod run;

pub use channels::{Channel, ChannelKind, ChannelRead, Item, Reducer};
pub use error::{GraphError, HostError};
pub use graph::{check_node_name, Graph, GraphSpec, NodeSpec, END, START, TASKS};
pub use retry::RetryPolicy;
pub use run::{Run, StepOutcome, Task, TaskKind, Version};
