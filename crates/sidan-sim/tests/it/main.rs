//! Integration tests of `sidan-sim` (one binary, several modules).

mod run;
