//! Integration tests of the `sidan` workspace (one binary, several modules).

mod batch_parallel;
mod city_file;
mod demo;
mod dispatch;
mod postgres;
mod simulation;
