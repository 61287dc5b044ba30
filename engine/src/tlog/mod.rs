//! The transparency log: RFC 6962 Merkle trees, C2SP signed checkpoints,
//! the entries vouch logs and the proofs it serves. Pure: the server keeps
//! the tree in its database and calls these functions.

pub mod entry;
pub mod merkle;
pub mod note;

pub use entry::{Entry, InclusionProof, KeyEvent, LogError};
pub use merkle::{Frontier, Hash, ProofError};
pub use note::{Checkpoint, NoteError, NoteSigner, NoteVerifier};
