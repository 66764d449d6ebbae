//! saphyr's string input with a smaller look-ahead window, which spares an allocation per
//! plain scalar.
//!
//! saphyr-parser 0.3.3 starts every plain scalar (every key, name and unquoted value) in a
//! 32-byte string, then reserves [`Input::bufmaxlen`] more bytes after its first
//! character: with [`StrInput`]'s 128, each of the ~90 plain scalars of a typical manifest
//! is reallocated to 129 bytes or more, and the JSON built from it keeps that size. A
//! window of 16 characters fits in the first 32 bytes. The window only sets how many
//! characters the scanner examines between look-ahead calls, which a string input answers
//! from memory anyway, so what is parsed is the same.
//!
//! Every other method forwards to [`StrInput`], whose versions are faster than the trait's
//! defaults.

use saphyr_parser::StrInput;
use saphyr_parser::input::{Input, SkipTabs};

/// Characters the scanner may look ahead at once: small enough that a plain scalar's first
/// character plus this window fits in saphyr's initial 32-byte string, large enough for its
/// block-scalar indentation fast path (`indent < window - 2`) to cover real manifests.
const WINDOW: usize = 16;

/// A `&str` input for saphyr's parser; see the module documentation.
#[derive(Clone, Copy)]
pub struct CompactInput<'a>(StrInput<'a>);

impl<'a> CompactInput<'a> {
    /// An input reading `text`.
    pub fn new(text: &'a str) -> Self {
        Self(StrInput::new(text))
    }
}

impl Input for CompactInput<'_> {
    #[inline]
    fn bufmaxlen(&self) -> usize {
        WINDOW
    }

    #[inline]
    fn lookahead(&mut self, count: usize) {
        self.0.lookahead(count);
    }
    #[inline]
    fn buflen(&self) -> usize {
        self.0.buflen()
    }
    #[inline]
    fn buf_is_empty(&self) -> bool {
        self.0.buf_is_empty()
    }
    #[inline]
    fn raw_read_ch(&mut self) -> char {
        self.0.raw_read_ch()
    }
    #[inline]
    fn raw_read_non_breakz_ch(&mut self) -> Option<char> {
        self.0.raw_read_non_breakz_ch()
    }
    #[inline]
    fn skip(&mut self) {
        self.0.skip();
    }
    #[inline]
    fn skip_n(&mut self, count: usize) {
        self.0.skip_n(count);
    }
    #[inline]
    fn peek(&self) -> char {
        self.0.peek()
    }
    #[inline]
    fn peek_nth(&self, n: usize) -> char {
        self.0.peek_nth(n)
    }
    #[inline]
    fn peek_opt(&self) -> Option<char> {
        self.0.peek_opt()
    }
    #[inline]
    fn look_ch(&mut self) -> char {
        self.0.look_ch()
    }
    #[inline]
    fn next_char_is(&self, c: char) -> bool {
        self.0.next_char_is(c)
    }
    #[inline]
    fn nth_char_is(&self, n: usize, c: char) -> bool {
        self.0.nth_char_is(n, c)
    }
    #[inline]
    fn next_2_are(&self, c1: char, c2: char) -> bool {
        self.0.next_2_are(c1, c2)
    }
    #[inline]
    fn next_3_are(&self, c1: char, c2: char, c3: char) -> bool {
        self.0.next_3_are(c1, c2, c3)
    }
    #[inline]
    fn next_is_document_indicator(&self) -> bool {
        self.0.next_is_document_indicator()
    }
    #[inline]
    fn next_is_document_start(&self) -> bool {
        self.0.next_is_document_start()
    }
    #[inline]
    fn next_is_document_end(&self) -> bool {
        self.0.next_is_document_end()
    }
    #[inline]
    fn skip_ws_to_eol(&mut self, skip_tabs: SkipTabs) -> (usize, Result<SkipTabs, &'static str>) {
        self.0.skip_ws_to_eol(skip_tabs)
    }
    #[inline]
    fn next_can_be_plain_scalar(&self, in_flow: bool) -> bool {
        self.0.next_can_be_plain_scalar(in_flow)
    }
    #[inline]
    fn next_is_blank_or_break(&self) -> bool {
        self.0.next_is_blank_or_break()
    }
    #[inline]
    fn next_is_blank_or_breakz(&self) -> bool {
        self.0.next_is_blank_or_breakz()
    }
    #[inline]
    fn next_is_blank(&self) -> bool {
        self.0.next_is_blank()
    }
    #[inline]
    fn next_is_break(&self) -> bool {
        self.0.next_is_break()
    }
    #[inline]
    fn next_is_breakz(&self) -> bool {
        self.0.next_is_breakz()
    }
    #[inline]
    fn next_is_z(&self) -> bool {
        self.0.next_is_z()
    }
    #[inline]
    fn next_is_flow(&self) -> bool {
        self.0.next_is_flow()
    }
    #[inline]
    fn next_is_digit(&self) -> bool {
        self.0.next_is_digit()
    }
    #[inline]
    fn next_is_alpha(&self) -> bool {
        self.0.next_is_alpha()
    }
    #[inline]
    fn skip_while_non_breakz(&mut self) -> usize {
        self.0.skip_while_non_breakz()
    }
    #[inline]
    fn skip_while_blank(&mut self) -> usize {
        self.0.skip_while_blank()
    }
    #[inline]
    fn fetch_while_is_alpha(&mut self, out: &mut String) -> usize {
        self.0.fetch_while_is_alpha(out)
    }
    #[inline]
    fn fetch_while_is_yaml_non_space(&mut self, out: &mut String) -> usize {
        self.0.fetch_while_is_yaml_non_space(out)
    }
}
