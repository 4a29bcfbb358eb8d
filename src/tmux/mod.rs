//! The tmux side (C-002 groundwork): the control-mode parser, the client that queues commands
//! over one `tmux -C` connection, and the batched option writer.
pub mod parser;
