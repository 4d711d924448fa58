//! A pickle virtual machine for the opcodes `torch.save` emits (protocols 2–5), enough to read
//! `data.pkl` of a PyTorch checkpoint without Python.
//!
//! Nothing is executed: a call of a global (`REDUCE`, `NEWOBJ`) becomes a [`Call`] node for the
//! caller to interpret (the torch reader turns `torch._utils._rebuild_tensor_v2` into a tensor),
//! except `collections.OrderedDict()`, which becomes a dict so that later `SETITEMS` fill it.
//! Containers are shared (`Rc`), as Python objects are, so an object memoized before it was filled
//! is seen filled wherever it is referenced again. Every read is bounds-checked: malformed input
//! is an [`Error::Format`], never a panic.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::{Error, Result};

/// A call recorded instead of executed: `callable(*args)`, then `__setstate__(state)` if BUILD
/// gave one.
pub(crate) struct Call {
    pub(crate) callable: Object,
    pub(crate) args: Object,
    pub(crate) state: Option<Object>,
}

/// A Python object as the pickle builds it.
#[derive(Clone)]
pub(crate) enum Object {
    None,
    Bool(bool),
    Int(i64),
    /// An integer beyond i64, as little-endian two's-complement bytes.
    BigInt(Rc<[u8]>),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<Vec<Object>>),
    List(Rc<RefCell<Vec<Object>>>),
    Dict(Rc<RefCell<Vec<(Object, Object)>>>),
    /// `module.name`, from GLOBAL or STACK_GLOBAL.
    Global(Rc<str>),
    Call(Rc<RefCell<Call>>),
    /// A persistent id (how torch refers to tensor storages).
    PersId(Rc<Object>),
}

impl std::fmt::Debug for Object {
    /// Only the kind: a derived, recursive `Debug` could overflow the stack on a deep pickle.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Drop for Object {
    /// Drops nested containers iteratively: a deeply nested pickle must not overflow the stack.
    fn drop(&mut self) {
        let mut pending = Vec::new();
        self.take_children(&mut pending);
        while let Some(mut o) = pending.pop() {
            o.take_children(&mut pending);
        }
    }
}

impl Object {
    /// Moves out the children of a container held only here (a shared one is merely released).
    fn take_children(&mut self, out: &mut Vec<Object>) {
        match self {
            Object::Tuple(rc) => {
                if let Some(v) = Rc::get_mut(rc) {
                    out.append(v);
                }
            }
            Object::List(rc) => {
                if let Some(v) = Rc::get_mut(rc) {
                    out.append(v.get_mut());
                }
            }
            Object::Dict(rc) => {
                if let Some(v) = Rc::get_mut(rc) {
                    for (k, x) in v.get_mut().drain(..) {
                        out.push(k);
                        out.push(x);
                    }
                }
            }
            Object::Call(rc) => {
                if let Some(c) = Rc::get_mut(rc) {
                    let c = c.get_mut();
                    out.push(std::mem::replace(&mut c.callable, Object::None));
                    out.push(std::mem::replace(&mut c.args, Object::None));
                    out.extend(c.state.take());
                }
            }
            Object::PersId(rc) => {
                if let Some(o) = Rc::get_mut(rc) {
                    out.push(std::mem::replace(o, Object::None));
                }
            }
            _ => {}
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Object::None => "None",
            Object::Bool(_) => "bool",
            Object::Int(_) | Object::BigInt(_) => "int",
            Object::Float(_) => "float",
            Object::Str(_) => "str",
            Object::Bytes(_) => "bytes",
            Object::Tuple(_) => "tuple",
            Object::List(_) => "list",
            Object::Dict(_) => "dict",
            Object::Global(_) => "global",
            Object::Call(_) => "object",
            Object::PersId(_) => "persistent id",
        }
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Format(format!("pickle: {}", msg.into()))
}

/// The reader's position in the pickle bytes.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| bad(format!("truncated: {n} bytes wanted at byte {}", self.pos)))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn len_u32(&mut self) -> Result<usize> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }
    fn len_u64(&mut self) -> Result<usize> {
        usize::try_from(u64::from_le_bytes(self.array()?)).map_err(|_| bad("length too large"))
    }
    /// A text line without its `\n` (the argument of the text opcodes of protocol 0).
    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("truncated: a text argument has no end of line"))?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| bad("a text argument is not UTF-8"))?;
        self.pos += n + 1;
        Ok(s)
    }
}

fn utf8(b: &[u8]) -> Result<Object> {
    std::str::from_utf8(b)
        .map(|s| Object::Str(s.into()))
        .map_err(|_| bad("a string is not valid UTF-8"))
}

/// An integer from little-endian two's-complement bytes (LONG1 / LONG4).
fn long(b: &[u8]) -> Object {
    if b.len() <= 8 {
        let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) {
            0xFF
        } else {
            0
        };
        let mut a = [fill; 8];
        a[..b.len()].copy_from_slice(b);
        Object::Int(i64::from_le_bytes(a))
    } else {
        Object::BigInt(b.into())
    }
}

/// Runs the pickle in `data` and returns the object it builds (what `pickle.loads` returns).
///
/// # Errors
/// [`Error::Format`] for truncated or malformed input, or an opcode outside what torch emits.
pub(crate) fn load(data: &[u8]) -> Result<Object> {
    let mut input = Input { data, pos: 0 };
    let mut stack: Vec<Object> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: HashMap<u32, Object> = HashMap::new();
    fn pop(stack: &mut Vec<Object>) -> Result<Object> {
        stack.pop().ok_or_else(|| bad("stack underflow"))
    }
    fn pop_mark(stack: &mut Vec<Object>, marks: &mut Vec<usize>) -> Result<Vec<Object>> {
        let m = marks.pop().ok_or_else(|| bad("no MARK on the stack"))?;
        if m > stack.len() {
            return Err(bad("MARK above the top of the stack"));
        }
        Ok(stack.split_off(m))
    }
    fn top(stack: &mut [Object]) -> Result<&mut Object> {
        stack.last_mut().ok_or_else(|| bad("stack underflow"))
    }
    fn extend_list(target: &Object, items: Vec<Object>) -> Result<()> {
        match target {
            Object::List(l) => {
                l.borrow_mut().extend(items);
                Ok(())
            }
            o => Err(bad(format!("APPEND to a {}", o.name()))),
        }
    }
    fn set_items(target: &Object, items: Vec<Object>) -> Result<()> {
        let Object::Dict(d) = target else {
            return Err(bad(format!("SETITEM on a {}", target.name())));
        };
        if items.len() % 2 != 0 {
            return Err(bad("SETITEMS with an odd number of items"));
        }
        let mut d = d.borrow_mut();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }
    fn call(callable: Object, args: Object) -> Object {
        let is_ordered_dict =
            matches!(&callable, Object::Global(g) if &**g == "collections.OrderedDict");
        let no_args = matches!(&args, Object::Tuple(t) if t.is_empty());
        if is_ordered_dict && no_args {
            return Object::Dict(Default::default());
        }
        Object::Call(Rc::new(RefCell::new(Call {
            callable,
            args,
            state: None,
        })))
    }
    loop {
        let op = input.u8()?;
        match op {
            0x80 => {
                let proto = input.u8()?;
                if proto > 5 {
                    return Err(bad(format!("unsupported protocol {proto}")));
                }
            }
            0x95 => {
                input.take(8)?; // FRAME: a length hint
            }
            b'.' => return pop(&mut stack),
            b'(' => marks.push(stack.len()),
            b'0' => {
                pop(&mut stack)?;
            }
            b'1' => {
                pop_mark(&mut stack, &mut marks)?;
            }
            b'2' => {
                let t = top(&mut stack)?.clone();
                stack.push(t);
            }
            b'N' => stack.push(Object::None),
            0x88 => stack.push(Object::Bool(true)),
            0x89 => stack.push(Object::Bool(false)),
            b'J' => stack.push(Object::Int(i32::from_le_bytes(input.array()?) as i64)),
            b'K' => stack.push(Object::Int(input.u8()? as i64)),
            b'M' => stack.push(Object::Int(u16::from_le_bytes(input.array()?) as i64)),
            0x8a => {
                let n = input.u8()? as usize;
                stack.push(long(input.take(n)?));
            }
            0x8b => {
                let n = input.len_u32()?;
                stack.push(long(input.take(n)?));
            }
            b'I' | b'L' => {
                let line = input.line()?;
                let s = line.trim_end_matches('L');
                stack.push(match s {
                    "00" => Object::Bool(false),
                    "01" => Object::Bool(true),
                    _ => Object::Int(
                        s.parse()
                            .map_err(|_| bad(format!("bad integer literal '{line}'")))?,
                    ),
                });
            }
            b'G' => stack.push(Object::Float(f64::from_be_bytes(input.array()?))),
            b'F' => {
                let line = input.line()?;
                let v = line
                    .parse()
                    .map_err(|_| bad(format!("bad float literal '{line}'")))?;
                stack.push(Object::Float(v));
            }
            b'X' => {
                let n = input.len_u32()?;
                stack.push(utf8(input.take(n)?)?);
            }
            0x8c => {
                let n = input.u8()? as usize;
                stack.push(utf8(input.take(n)?)?);
            }
            0x8d => {
                let n = input.len_u64()?;
                stack.push(utf8(input.take(n)?)?);
            }
            b'V' => {
                let line = input.line()?;
                stack.push(Object::Str(line.into()));
            }
            // Python 2 byte strings (protocol 2 writes these for `str` only from Python 2)
            b'T' => {
                let n = input.len_u32()?;
                stack.push(Object::Str(String::from_utf8_lossy(input.take(n)?).into()));
            }
            b'U' => {
                let n = input.u8()? as usize;
                stack.push(Object::Str(String::from_utf8_lossy(input.take(n)?).into()));
            }
            b'B' => {
                let n = input.len_u32()?;
                stack.push(Object::Bytes(input.take(n)?.into()));
            }
            b'C' => {
                let n = input.u8()? as usize;
                stack.push(Object::Bytes(input.take(n)?.into()));
            }
            0x8e | 0x96 => {
                let n = input.len_u64()?;
                stack.push(Object::Bytes(input.take(n)?.into()));
            }
            b')' => stack.push(Object::Tuple(Rc::new(Vec::new()))),
            b't' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Object::Tuple(Rc::new(items)));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err(bad("stack underflow"));
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Object::Tuple(Rc::new(items)));
            }
            b']' | 0x8f => stack.push(Object::List(Default::default())),
            b'l' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Object::List(Rc::new(RefCell::new(items))));
            }
            0x91 => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Object::List(Rc::new(RefCell::new(items))));
            }
            b'a' => {
                let v = pop(&mut stack)?;
                extend_list(top(&mut stack)?, vec![v])?;
            }
            b'e' | 0x90 => {
                let items = pop_mark(&mut stack, &mut marks)?;
                extend_list(top(&mut stack)?, items)?;
            }
            b'}' => stack.push(Object::Dict(Default::default())),
            b'd' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                let d = Object::Dict(Default::default());
                set_items(&d, items)?;
                stack.push(d);
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                set_items(top(&mut stack)?, vec![k, v])?;
            }
            b'u' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                set_items(top(&mut stack)?, items)?;
            }
            b'q' => {
                let i = input.u8()? as u32;
                memo.insert(i, top(&mut stack)?.clone());
            }
            b'r' => {
                let i = u32::from_le_bytes(input.array()?);
                memo.insert(i, top(&mut stack)?.clone());
            }
            0x94 => {
                let i = memo.len() as u32;
                memo.insert(i, top(&mut stack)?.clone());
            }
            b'p' => {
                let line = input.line()?;
                let i = line
                    .parse()
                    .map_err(|_| bad(format!("bad memo key '{line}'")))?;
                memo.insert(i, top(&mut stack)?.clone());
            }
            b'h' | b'j' | b'g' => {
                let i = match op {
                    b'h' => input.u8()? as u32,
                    b'j' => u32::from_le_bytes(input.array()?),
                    _ => {
                        let line = input.line()?;
                        line.parse()
                            .map_err(|_| bad(format!("bad memo key '{line}'")))?
                    }
                };
                let v = memo
                    .get(&i)
                    .ok_or_else(|| bad(format!("memo key {i} was never stored")))?;
                stack.push(v.clone());
            }
            b'c' => {
                let module = input.line()?;
                let name = input.line()?;
                stack.push(Object::Global(format!("{module}.{name}").into()));
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (&module, &name) {
                    (Object::Str(m), Object::Str(n)) => {
                        stack.push(Object::Global(format!("{m}.{n}").into()))
                    }
                    _ => return Err(bad("STACK_GLOBAL needs two strings")),
                }
            }
            b'R' | 0x81 => {
                let args = pop(&mut stack)?;
                let callable = pop(&mut stack)?;
                stack.push(call(callable, args));
            }
            0x92 => {
                let _kwargs = pop(&mut stack)?;
                let args = pop(&mut stack)?;
                let callable = pop(&mut stack)?;
                stack.push(call(callable, args));
            }
            b'b' => {
                let state = pop(&mut stack)?;
                match top(&mut stack)? {
                    Object::Call(c) => c.borrow_mut().state = Some(state),
                    // an OrderedDict's attributes (a state_dict's `_metadata`): not kept
                    Object::Dict(_) => {}
                    o => return Err(bad(format!("BUILD on a {}", o.name()))),
                }
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                stack.push(Object::PersId(Rc::new(pid)));
            }
            b'P' => {
                let line = input.line()?;
                stack.push(Object::PersId(Rc::new(Object::Str(line.into()))));
            }
            op => {
                return Err(bad(format!(
                    "unsupported opcode 0x{op:02x} at byte {}",
                    input.pos - 1
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict_items(o: &Object) -> Vec<(Object, Object)> {
        match o {
            Object::Dict(d) => d.borrow().clone(),
            o => panic!("not a dict: {o:?}"),
        }
    }

    #[test]
    fn reads_a_protocol_2_dict_of_scalars() {
        // pickle.dumps({"a": 1, "b": [2.5, True, None], "c": -300}, protocol=2)
        let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02]q\x03(G@\x04\x00\x00\x00\x00\x00\x00\x88NeX\x01\x00\x00\x00cq\x04J\xd4\xfe\xff\xffu.";
        let items = dict_items(&load(p).unwrap());
        assert_eq!(items.len(), 3);
        assert!(matches!(&items[0], (Object::Str(k), Object::Int(1)) if &**k == "a"));
        match &items[1].1 {
            Object::List(l) => {
                let l = l.borrow();
                assert!(matches!(l[0], Object::Float(v) if v == 2.5));
                assert!(matches!(l[1], Object::Bool(true)));
                assert!(matches!(l[2], Object::None));
            }
            o => panic!("{o:?}"),
        }
        assert!(matches!(items[2].1, Object::Int(-300)));
    }

    #[test]
    fn a_container_memoized_before_it_was_filled_is_seen_filled() {
        // d = {}; memo; d["x"] = 1; then [d, memo-get d]
        let p = b"\x80\x02](}q\x00X\x01\x00\x00\x00xK\x01sh\x00e.";
        let o = load(p).unwrap();
        let Object::List(l) = &o else { panic!() };
        for d in l.borrow().iter() {
            assert_eq!(dict_items(d).len(), 1);
        }
    }

    #[test]
    fn long1_reads_twos_complement_integers() {
        // LONG1 with 1 byte 0xff is -1; with 6 bytes 00 00 00 00 00 01 is 2^40
        assert!(matches!(load(b"\x8a\x01\xff.").unwrap(), Object::Int(-1)));
        assert!(
            matches!(load(b"\x8a\x06\x00\x00\x00\x00\x00\x01.").unwrap(), Object::Int(v) if v == 1 << 40)
        );
    }

    #[test]
    fn malformed_pickles_are_errors() {
        for p in [
            &b""[..],
            b"\x80\x02",
            b"\x80\x02}q\x00(X\x05\x00\x00\x00ab",
            b"\x80\x02h\x07.",
            b"\x80\x02K\x01K\x02s.",
            b"\x80\x02u.",
            b"\x80\x02\xff.",
            b"\x80\x09.",
            b"\x80\x02.",
        ] {
            assert!(load(p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn deep_nesting_is_dropped_without_overflowing_the_stack() {
        // TUPLE1 wraps the top in a 1-tuple: a million of them nest a million deep
        let mut p = vec![b']'];
        p.extend(std::iter::repeat_n(0x85u8, 1_000_000));
        p.push(b'.');
        let o = load(&p).unwrap();
        assert!(matches!(o, Object::Tuple(_)));
        drop(o);
    }
}
