//! Prometheus text exposition of the profiles' refresh state, and its opt-in HTTP endpoint.
