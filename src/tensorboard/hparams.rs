//! The hparams plugin's summaries (what `torch.utils.tensorboard.summary.hparams` writes).

use prost::Message;

use super::proto;
use super::proto::{
    hparams_plugin_data::Data, summary::value::Value as V, summary::Value, value::Kind, Experiment,
    HParamInfo, HParamsPluginData, MetricInfo, MetricName, SessionEndInfo, SessionStartInfo,
    Summary, TensorProto,
};
use super::summary::plugin_metadata;
use super::writer::now;

/// A hyperparameter value for [`SummaryWriter::add_hparams`](super::SummaryWriter::add_hparams):
/// a number, a string or a flag (the types TensorBoard's HParams tab knows).
#[derive(Clone, Debug, PartialEq)]
pub enum HParam {
    /// A number.
    Float(f64),
    /// A string.
    Str(String),
    /// A flag.
    Bool(bool),
}

impl From<f64> for HParam {
    fn from(v: f64) -> Self {
        HParam::Float(v)
    }
}
impl From<f32> for HParam {
    fn from(v: f32) -> Self {
        HParam::Float(v as f64)
    }
}
impl From<i64> for HParam {
    fn from(v: i64) -> Self {
        HParam::Float(v as f64)
    }
}
impl From<usize> for HParam {
    fn from(v: usize) -> Self {
        HParam::Float(v as f64)
    }
}
impl From<i32> for HParam {
    fn from(v: i32) -> Self {
        HParam::Float(v as f64)
    }
}
impl From<bool> for HParam {
    fn from(v: bool) -> Self {
        HParam::Bool(v)
    }
}
impl From<&str> for HParam {
    fn from(v: &str) -> Self {
        HParam::Str(v.to_owned())
    }
}
impl From<String> for HParam {
    fn from(v: String) -> Self {
        HParam::Str(v)
    }
}

fn wrap(tag: &str, data: Data) -> Summary {
    let content = HParamsPluginData {
        version: 0,
        data: Some(data),
    }
    .encode_to_vec();
    // tensorboard's own hparams summaries carry a placeholder float tensor
    let null = TensorProto {
        dtype: proto::DT_FLOAT,
        float_val: vec![0.0],
        ..Default::default()
    };
    Summary {
        value: vec![Value {
            tag: tag.to_owned(),
            metadata: Some(plugin_metadata("hparams", content)),
            value: Some(V::Tensor(null)),
            ..Default::default()
        }],
    }
}

/// The experiment, session-start and session-end summaries, tagged `_hparams_/experiment`,
/// `_hparams_/session_start_info` and `_hparams_/session_end_info`.
pub(crate) fn summaries(hparams: &[(&str, HParam)], metrics: &[(&str, f64)]) -> [Summary; 3] {
    let t = now();
    let experiment = Experiment {
        time_created_secs: t,
        hparam_infos: hparams
            .iter()
            .map(|(name, v)| HParamInfo {
                name: (*name).to_owned(),
                r#type: match v {
                    HParam::Float(_) => proto::HPARAM_FLOAT64,
                    HParam::Str(_) => proto::HPARAM_STRING,
                    HParam::Bool(_) => proto::HPARAM_BOOL,
                },
                ..Default::default()
            })
            .collect(),
        metric_infos: metrics
            .iter()
            .map(|(tag, _)| MetricInfo {
                name: Some(MetricName {
                    group: String::new(),
                    tag: (*tag).to_owned(),
                }),
                display_name: String::new(),
            })
            .collect(),
        ..Default::default()
    };
    let start = SessionStartInfo {
        hparams: hparams
            .iter()
            .map(|(name, v)| {
                let kind = match v {
                    HParam::Float(x) => Kind::NumberValue(*x),
                    HParam::Str(s) => Kind::StringValue(s.clone()),
                    HParam::Bool(b) => Kind::BoolValue(*b),
                };
                ((*name).to_owned(), proto::Value { kind: Some(kind) })
            })
            .collect(),
        group_name: String::new(),
        start_time_secs: t,
    };
    let end = SessionEndInfo {
        status: proto::STATUS_SUCCESS,
        end_time_secs: t,
    };
    [
        wrap("_hparams_/experiment", Data::Experiment(experiment)),
        wrap(
            "_hparams_/session_start_info",
            Data::SessionStartInfo(start),
        ),
        wrap("_hparams_/session_end_info", Data::SessionEndInfo(end)),
    ]
}
