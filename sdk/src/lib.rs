//! relaymap: zero-copy consumer for relaymap kernel relay channels.
