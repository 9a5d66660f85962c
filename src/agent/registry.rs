//! The agent's profiles by name: one refresher each (plus optional IMDS/container listeners).
