//! ferrograph's checkpoint model and saver trait. Filled in by the checkpoint work.
