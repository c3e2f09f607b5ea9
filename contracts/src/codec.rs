//! The codec of every server we generate: tonic's prost codec, except that a request
//! which does not decode is answered `INVALID_ARGUMENT: request: not a valid <Message>
//! message` instead of `INTERNAL` with the decoder's text (which names fields and types).
//!
//! Why a codec and not a tower layer: only the decoder knows that decoding failed (a
//! layer would have to recognise prost's error text in a response, which changes between
//! versions) and which message it was decoding. What happens before the decoder runs —
//! no message at all, a truncated frame, a frame over the size limit — is the framing
//! check's part (`grpc_adapter::guard`). Clients keep tonic's own codec (see `build.rs`): an
//! answer that does not decode is not the caller's fault.

use std::marker::PhantomData;

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Encodes answers like [`ProstCodec`]; decodes requests with [`RequestDecoder`].
#[derive(Debug, Clone)]
pub struct RequestCodec<T, U> {
    inner: ProstCodec<T, U>,
}

impl<T, U> Default for RequestCodec<T, U> {
    fn default() -> Self {
        Self { inner: ProstCodec::default() }
    }
}

impl<T, U> Codec for RequestCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.inner.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder { inner: self.inner.decoder(), _message: PhantomData }
    }
}

/// [`ProstDecoder`] whose errors say only which message the request was not.
#[derive(Debug)]
pub struct RequestDecoder<U> {
    inner: ProstDecoder<U>,
    _message: PhantomData<U>,
}

impl<U: prost::Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.inner.decode(buf).map_err(|e| {
            tracing::debug!(error = e.message(), "request refused: it does not decode");
            not_a_valid::<U>()
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

/// `INVALID_ARGUMENT: request: not a valid <Message> message`.
pub fn not_a_valid<U>() -> Status {
    let full = std::any::type_name::<U>();
    let name = full.rsplit("::").next().unwrap_or(full);
    Status::invalid_argument(format!("request: not a valid {name} message"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::mission::v1::AchieveMissionRequest;

    #[test]
    fn the_refusal_names_the_message_and_nothing_of_the_decoder() {
        let s = not_a_valid::<AchieveMissionRequest>();
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert_eq!(s.message(), "request: not a valid AchieveMissionRequest message");
    }
}
