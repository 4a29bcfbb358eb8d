//! The tmux side (C-002 groundwork): the control-mode parser, the client that queues commands
//! over one `tmux -C` connection, the pane registry fed by `list-panes -a`, and the batched
//! option writer; the daemon's own session, where the control client sits.
pub mod client;
pub mod control_session;
pub mod options;
pub mod parser;
pub mod registry;
