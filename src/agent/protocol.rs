//! The agent's wire format: one versioned JSON request and one response per connection, bounded.
