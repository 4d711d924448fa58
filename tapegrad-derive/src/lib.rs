//! `#[derive(Module)]` for tapegrad: implements `tapegrad::nn::Module::visit` from a struct's
//! fields, so declaring a model takes no more code than in PyTorch.
//!
//! Field rules, by type:
//! - `Tensor` is a parameter, `Option<Tensor>` an optional one; `#[buffer]` makes a tensor field a
//!   buffer (saved in the state dict, not trained);
//! - `TrainFlag` is the module's train / eval flag;
//! - numbers, `bool`, `String` and fields marked `#[module(skip)]` are ignored;
//! - every other field is a child module, named after the field (`fc1.weight`).
//!
//! Tuple structs name their fields by index (`0.weight`), like `nn.Sequential`.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, Data, DeriveInput, Fields, GenericArgument, PathArguments, Type};

/// Derives `tapegrad::nn::Module` for a struct (see the crate docs for the field rules).
#[proc_macro_derive(Module, attributes(buffer, module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn last_ident(ty: &Type) -> Option<(String, Option<&Type>)> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    let inner = match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    };
    Some((seg.ident.to_string(), inner))
}

fn has_attr(attrs: &[syn::Attribute], name: &str, arg: Option<&str>) -> syn::Result<bool> {
    for a in attrs {
        if a.path().is_ident(name) {
            match arg {
                None => return Ok(true),
                Some(arg) => {
                    let mut found = false;
                    a.parse_nested_meta(|m| {
                        if m.path.is_ident(arg) {
                            found = true;
                            Ok(())
                        } else {
                            Err(m.error("expected `skip`"))
                        }
                    })?;
                    if found {
                        return Ok(true);
                    }
                }
            }
        }
    }
    Ok(false)
}

const PLAIN: &[&str] = &[
    "usize",
    "isize",
    "u8",
    "u16",
    "u32",
    "u64",
    "i8",
    "i16",
    "i32",
    "i64",
    "f32",
    "f64",
    "bool",
    "String",
    "DType",
    "PhantomData",
];

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let name = &input.ident;
    let Data::Struct(s) = &input.data else {
        return Err(syn::Error::new_spanned(
            name,
            "#[derive(Module)] works on structs",
        ));
    };
    let fields: Vec<(proc_macro2::TokenStream, String, &syn::Field)> = match &s.fields {
        Fields::Named(f) => f
            .named
            .iter()
            .map(|f| {
                let id = f.ident.clone().unwrap();
                let label = id.to_string();
                (quote!(#id), label.trim_start_matches("r#").to_owned(), f)
            })
            .collect(),
        Fields::Unnamed(f) => f
            .unnamed
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let idx = syn::Index::from(i);
                (quote!(#idx), i.to_string(), f)
            })
            .collect(),
        Fields::Unit => Vec::new(),
    };
    let mut body = Vec::new();
    for (access, label, f) in fields {
        if has_attr(&f.attrs, "module", Some("skip"))? {
            continue;
        }
        let buffer = has_attr(&f.attrs, "buffer", None)?;
        let (ty, inner) = last_ident(&f.ty).unwrap_or_default();
        let inner_ty = inner.and_then(last_ident).map(|(t, _)| t);
        let stmt = match (ty.as_str(), inner_ty.as_deref()) {
            ("Tensor", _) if buffer => quote!(v.buffer(#label, &self.#access);),
            ("Tensor", _) => quote!(v.param(#label, &self.#access);),
            ("Option", Some("Tensor")) if buffer => {
                quote!(if let Some(t) = &self.#access { v.buffer(#label, t); })
            }
            ("Option", Some("Tensor")) => {
                quote!(if let Some(t) = &self.#access { v.param(#label, t); })
            }
            ("TrainFlag", _) => quote!(v.flag(&self.#access);),
            (t, _) if PLAIN.contains(&t) => continue,
            _ => quote!(v.module(#label, &self.#access);),
        };
        body.push(stmt);
    }
    let (ig, tg, wc) = input.generics.split_for_impl();
    Ok(quote! {
        impl #ig ::tapegrad::nn::Module for #name #tg #wc {
            fn visit(&self, v: &mut ::tapegrad::nn::Visitor) {
                #(#body)*
            }
        }
    })
}
