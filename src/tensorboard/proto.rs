//! The subset of TensorFlow's and TensorBoard's protocol buffers that event files use.
//!
//! Hand-written `prost` derive structs (so building needs no `protoc`). Message, field names and
//! field numbers follow these `.proto` files of the `tensorboard` package
//! (`tensorboard/compat/proto/` and `tensorboard/plugins/hparams/`): `event.proto` (Event),
//! `summary.proto` (Summary, SummaryMetadata, HistogramProto), `tensor.proto` and
//! `tensor_shape.proto` (TensorProto, TensorShapeProto), `graph.proto`, `node_def.proto`,
//! `attr_value.proto` and `versions.proto` (GraphDef, NodeDef, AttrValue, VersionDef), the hparams
//! plugin's `plugin_data.proto` and `api.proto`, and `google/protobuf/struct.proto` (Value).
//! Fields this crate never writes are left out; decoding skips them. The numbers were checked
//! against the descriptors of tensorboard 2.21's generated Python modules.
//!
//! Enum-typed fields are plain `i32`s (protobuf encodes enums as varints); the values used are the
//! constants below.

#![allow(missing_docs)] // every field mirrors the .proto field of the same name

use std::collections::BTreeMap;

/// `DataType.DT_FLOAT` of `types.proto`.
pub const DT_FLOAT: i32 = 1;
/// `DataType.DT_DOUBLE`.
pub const DT_DOUBLE: i32 = 2;
/// `DataType.DT_STRING`.
pub const DT_STRING: i32 = 7;
/// `DataType.DT_INT64`.
pub const DT_INT64: i32 = 9;
/// `DataType.DT_BOOL`.
pub const DT_BOOL: i32 = 10;

/// One record of an event file (`tensorboard.Event`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "event::What", tags = "3, 4, 5, 9")]
    pub what: Option<event::What>,
}

/// Nested types of [`Event`].
pub mod event {
    /// What an event holds.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum What {
        /// `"brain.Event:2"`, the first event of every file.
        #[prost(string, tag = "3")]
        FileVersion(String),
        /// A serialized [`GraphDef`](super::GraphDef).
        #[prost(bytes, tag = "4")]
        GraphDef(Vec<u8>),
        /// Summaries (scalars, histograms, images, text, hparams).
        #[prost(message, tag = "5")]
        Summary(super::Summary),
        /// A serialized MetaGraphDef (never written here).
        #[prost(bytes, tag = "9")]
        MetaGraphDef(Vec<u8>),
    }
}

/// A set of tagged values (`tensorboard.Summary`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<summary::Value>,
}

/// Nested types of [`Summary`].
pub mod summary {
    /// An encoded image (`Summary.Image`).
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Image {
        #[prost(int32, tag = "1")]
        pub height: i32,
        #[prost(int32, tag = "2")]
        pub width: i32,
        /// 1 grayscale, 2 grayscale + alpha, 3 RGB, 4 RGBA.
        #[prost(int32, tag = "3")]
        pub colorspace: i32,
        /// The PNG file.
        #[prost(bytes, tag = "4")]
        pub encoded_image_string: Vec<u8>,
    }

    /// One tagged value (`Summary.Value`).
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Value {
        #[prost(string, tag = "7")]
        pub node_name: String,
        #[prost(string, tag = "1")]
        pub tag: String,
        #[prost(message, optional, tag = "9")]
        pub metadata: Option<super::SummaryMetadata>,
        #[prost(oneof = "value::Value", tags = "2, 4, 5, 8")]
        pub value: Option<value::Value>,
    }

    /// Nested types of [`Value`].
    pub mod value {
        /// The payload of a [`Value`](super::Value).
        #[derive(Clone, PartialEq, ::prost::Oneof)]
        pub enum Value {
            /// A scalar.
            #[prost(float, tag = "2")]
            SimpleValue(f32),
            /// An image.
            #[prost(message, tag = "4")]
            Image(super::Image),
            /// A histogram.
            #[prost(message, tag = "5")]
            Histo(super::super::HistogramProto),
            /// A tensor (text, hparams and other plugins).
            #[prost(message, tag = "8")]
            Tensor(super::super::TensorProto),
        }
    }
}

/// Which plugin owns a summary value (`tensorboard.SummaryMetadata`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<summary_metadata::PluginData>,
    #[prost(string, tag = "2")]
    pub display_name: String,
    #[prost(string, tag = "3")]
    pub summary_description: String,
    #[prost(int32, tag = "4")]
    pub data_class: i32,
}

/// Nested types of [`SummaryMetadata`].
pub mod summary_metadata {
    /// A plugin name and its serialized content.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct PluginData {
        #[prost(string, tag = "1")]
        pub plugin_name: String,
        #[prost(bytes, tag = "2")]
        pub content: Vec<u8>,
    }
}

/// A histogram: bucket `i` counts values in `[bucket_limit[i-1], bucket_limit[i])`
/// (`tensorboard.HistogramProto`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HistogramProto {
    #[prost(double, tag = "1")]
    pub min: f64,
    #[prost(double, tag = "2")]
    pub max: f64,
    #[prost(double, tag = "3")]
    pub num: f64,
    #[prost(double, tag = "4")]
    pub sum: f64,
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// A tensor's dtype, shape and values (`tensorboard.TensorProto`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    #[prost(bytes, tag = "4")]
    pub tensor_content: Vec<u8>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    #[prost(bytes, repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    #[prost(bool, repeated, tag = "11")]
    pub bool_val: Vec<bool>,
}

/// A shape (`tensorboard.TensorShapeProto`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<tensor_shape_proto::Dim>,
    #[prost(bool, tag = "3")]
    pub unknown_rank: bool,
}

/// Nested types of [`TensorShapeProto`].
pub mod tensor_shape_proto {
    /// One dimension.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Dim {
        #[prost(int64, tag = "1")]
        pub size: i64,
        #[prost(string, tag = "2")]
        pub name: String,
    }
}

/// A computation graph (`tensorboard.GraphDef`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GraphDef {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeDef>,
    #[prost(message, optional, tag = "4")]
    pub versions: Option<VersionDef>,
}

/// One node of a [`GraphDef`] (`tensorboard.NodeDef`); `input` names other nodes.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct NodeDef {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub op: String,
    #[prost(string, repeated, tag = "3")]
    pub input: Vec<String>,
    #[prost(string, tag = "4")]
    pub device: String,
    #[prost(btree_map = "string, message", tag = "5")]
    pub attr: BTreeMap<String, AttrValue>,
}

/// Graph format versions (`tensorboard.VersionDef`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct VersionDef {
    #[prost(int32, tag = "1")]
    pub producer: i32,
    #[prost(int32, tag = "2")]
    pub min_consumer: i32,
}

/// A node attribute (`tensorboard.AttrValue`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct AttrValue {
    #[prost(oneof = "attr_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<attr_value::Value>,
}

/// Nested types of [`AttrValue`].
pub mod attr_value {
    /// A list attribute (`AttrValue.ListValue`).
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct ListValue {
        #[prost(bytes, repeated, tag = "2")]
        pub s: Vec<Vec<u8>>,
        #[prost(int64, repeated, tag = "3")]
        pub i: Vec<i64>,
        #[prost(float, repeated, tag = "4")]
        pub f: Vec<f32>,
        #[prost(bool, repeated, tag = "5")]
        pub b: Vec<bool>,
        #[prost(message, repeated, tag = "7")]
        pub shape: Vec<super::TensorShapeProto>,
    }

    /// The attribute's value.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Value {
        /// A list.
        #[prost(message, tag = "1")]
        List(ListValue),
        /// Bytes (a string).
        #[prost(bytes, tag = "2")]
        S(Vec<u8>),
        /// An integer.
        #[prost(int64, tag = "3")]
        I(i64),
        /// A float.
        #[prost(float, tag = "4")]
        F(f32),
        /// A flag.
        #[prost(bool, tag = "5")]
        B(bool),
        /// A dtype (`DT_*`).
        #[prost(int32, tag = "6")]
        Type(i32),
        /// A shape.
        #[prost(message, tag = "7")]
        Shape(super::TensorShapeProto),
    }
}

/// The hparams plugin's content (`tensorboard.hparams.HParamsPluginData`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HParamsPluginData {
    #[prost(int32, tag = "1")]
    pub version: i32,
    #[prost(oneof = "hparams_plugin_data::Data", tags = "2, 3, 4")]
    pub data: Option<hparams_plugin_data::Data>,
}

/// Nested types of [`HParamsPluginData`].
pub mod hparams_plugin_data {
    /// Which hparams record this is.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Data {
        /// The experiment: which hparams and metrics exist.
        #[prost(message, tag = "2")]
        Experiment(super::Experiment),
        /// A session (run) started with these hparam values.
        #[prost(message, tag = "3")]
        SessionStartInfo(super::SessionStartInfo),
        /// A session ended.
        #[prost(message, tag = "4")]
        SessionEndInfo(super::SessionEndInfo),
    }
}

/// `DataType.DATA_TYPE_STRING` of the hparams `api.proto`.
pub const HPARAM_STRING: i32 = 1;
/// `DataType.DATA_TYPE_BOOL`.
pub const HPARAM_BOOL: i32 = 2;
/// `DataType.DATA_TYPE_FLOAT64`.
pub const HPARAM_FLOAT64: i32 = 3;
/// `Status.STATUS_SUCCESS` of the hparams `api.proto`.
pub const STATUS_SUCCESS: i32 = 1;

/// The hparams and metrics of an experiment (`tensorboard.hparams.Experiment`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Experiment {
    #[prost(string, tag = "6")]
    pub name: String,
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(double, tag = "3")]
    pub time_created_secs: f64,
    #[prost(message, repeated, tag = "4")]
    pub hparam_infos: Vec<HParamInfo>,
    #[prost(message, repeated, tag = "5")]
    pub metric_infos: Vec<MetricInfo>,
}

/// One hyperparameter (`tensorboard.hparams.HParamInfo`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HParamInfo {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub display_name: String,
    #[prost(string, tag = "3")]
    pub description: String,
    /// `HPARAM_*`.
    #[prost(int32, tag = "4")]
    pub r#type: i32,
}

/// One metric (`tensorboard.hparams.MetricInfo`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MetricInfo {
    #[prost(message, optional, tag = "1")]
    pub name: Option<MetricName>,
    #[prost(string, tag = "3")]
    pub display_name: String,
}

/// A metric's scalar tag (`tensorboard.hparams.MetricName`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MetricName {
    #[prost(string, tag = "1")]
    pub group: String,
    #[prost(string, tag = "2")]
    pub tag: String,
}

/// The hparam values of a session (`tensorboard.hparams.SessionStartInfo`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SessionStartInfo {
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, Value>,
    #[prost(string, tag = "4")]
    pub group_name: String,
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// How a session ended (`tensorboard.hparams.SessionEndInfo`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SessionEndInfo {
    /// `STATUS_*`.
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// A dynamically typed value (`google.protobuf.Value`, the subset hparams use).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Value {
    #[prost(oneof = "value::Kind", tags = "2, 3, 4")]
    pub kind: Option<value::Kind>,
}

/// Nested types of [`Value`].
pub mod value {
    /// The value.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Kind {
        /// A number.
        #[prost(double, tag = "2")]
        NumberValue(f64),
        /// A string.
        #[prost(string, tag = "3")]
        StringValue(String),
        /// A flag.
        #[prost(bool, tag = "4")]
        BoolValue(bool),
    }
}
