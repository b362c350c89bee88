//! Sans-I/O SMS codec (3GPP TS 23.040 / 23.038). Pure functions over bytes: no input makes
//! `parse` panic, and `emit` never writes past the length it reported.
