//! Comparing two exchanges (`hooks diff`).
