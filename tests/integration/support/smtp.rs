//! A minimal SMTP sink for tests. (Being written.)
