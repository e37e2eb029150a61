//! reseal: offline Sysprep. Generalizes a Windows image without booting it.
#![forbid(unsafe_code)]
