//! `tapegrad::distributed` on the threads backend: every collective against hand-computed answers,
//! the order of asynchronous work, and the faults (timeouts, ranks that leave or panic,
//! mismatched calls) that must end in a clear error instead of a hang or a wrong answer.
//! The same checks over MPI, with real `mpirun` processes, are in tests/distributed_mpi.rs.

mod common;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use tapegrad::distributed::{
    self, launch, launch_with, Backend, InitOptions, ProcessGroup, ReduceOp,
};
use tapegrad::prelude::*;

fn short(timeout_ms: u64) -> InitOptions {
    InitOptions::with_timeout(Duration::from_millis(timeout_ms))
}

/// Runs `f` on `n` thread ranks and returns each rank's result.
fn on_threads<R: Send>(n: usize, f: impl Fn(ProcessGroup) -> R + Send + Sync) -> Vec<R> {
    launch_with(Backend::Threads(n), short(20_000), f).unwrap()
}

fn err_text<T: std::fmt::Debug>(r: tapegrad::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn all_reduce_of_rank_plus_one_gives_every_op_on_every_dtype() {
    // three ranks with t = rank + 1 = 1, 2, 3:
    // Sum 6, Avg 2, Max 3, Min 1, Product 6
    let want = [
        (ReduceOp::Sum, 6.0),
        (ReduceOp::Avg, 2.0),
        (ReduceOp::Max, 3.0),
        (ReduceOp::Min, 1.0),
        (ReduceOp::Product, 6.0),
    ];
    for dtype in [DType::F32, DType::F64, DType::I64] {
        let got = on_threads(3, |pg| {
            want.iter()
                .map(|&(op, _)| {
                    let t = Tensor::full_dtype(&[2, 2], pg.rank() as f64 + 1.0, dtype);
                    pg.all_reduce(&t, op).unwrap();
                    assert_eq!(t.dtype(), dtype);
                    t.to_vec_f64()
                })
                .collect::<Vec<_>>()
        });
        for rank_results in got {
            for (values, &(op, v)) in rank_results.iter().zip(&want) {
                assert_eq!(values, &vec![v; 4], "{dtype} {op:?}");
            }
        }
    }
}

#[test]
fn all_reduce_of_int64_avg_rounds_toward_zero() {
    // ranks hold 1 and 2 (and -1, -2): (1 + 2) / 2 = 1, (-1 - 2) / 2 = -1
    let got = on_threads(2, |pg| {
        let r = pg.rank() as i64 + 1;
        let t = Tensor::from_vec_i64(vec![r, -r], &[2]);
        pg.all_reduce(&t, ReduceOp::Avg).unwrap();
        t.to_vec::<i64>()
    });
    assert_eq!(got, vec![vec![1, -1]; 2]);
}

#[test]
fn all_reduce_of_bools_is_any_for_sum_and_max_and_all_for_min_and_product() {
    // rank 0: [T, F, T, F], rank 1: [T, T, F, F]
    let got = on_threads(2, |pg| {
        let mine = if pg.rank() == 0 {
            vec![true, false, true, false]
        } else {
            vec![true, true, false, false]
        };
        [
            ReduceOp::Sum,
            ReduceOp::Max,
            ReduceOp::Min,
            ReduceOp::Product,
        ]
        .map(|op| {
            let t = Tensor::from_values(mine.clone(), &[4]);
            pg.all_reduce(&t, op).unwrap();
            t.to_vec::<bool>()
        })
        .to_vec()
    });
    let any = vec![true, true, true, false];
    let all = vec![true, false, false, false];
    for r in got {
        assert_eq!(r, vec![any.clone(), any.clone(), all.clone(), all.clone()]);
    }
}

#[test]
fn all_reduce_sums_in_rank_order_so_results_are_bitwise_reproducible() {
    // f32: (1e8 + 1) + (-1e8) = 0, since 1e8 + 1 rounds to 1e8; another order would give 1
    let values = [1e8f32, 1.0, -1e8];
    for _ in 0..3 {
        let got = on_threads(3, |pg| {
            let t = Tensor::from_vec(vec![values[pg.rank()]], &[1]);
            pg.all_reduce(&t, ReduceOp::Sum).unwrap();
            t.to_vec::<f32>()[0].to_bits()
        });
        assert_eq!(got, vec![0f32.to_bits(); 3]);
    }
}

#[test]
fn broadcast_copies_the_source_rank_into_every_rank_in_place() {
    for dtype in [DType::F32, DType::F64, DType::I64, DType::Bool] {
        let got = on_threads(3, |pg| {
            // rank r holds [r, r+1]; rank 2's [2, 3] wins
            let r = pg.rank() as f64;
            let t = Tensor::from_vec_f64(vec![r, r + 1.0], &[2]).to_dtype(dtype);
            let handle = t.clone();
            pg.broadcast(&t, 2).unwrap();
            assert_eq!(t.dtype(), dtype);
            handle.to_vec_f64()
        });
        let want = Tensor::from_vec_f64(vec![2.0, 3.0], &[2])
            .to_dtype(dtype)
            .to_vec_f64();
        assert_eq!(got, vec![want; 3], "{dtype}");
    }
}

#[test]
fn all_gather_returns_every_ranks_tensor_in_rank_order() {
    for dtype in [DType::F32, DType::F64, DType::I64, DType::Bool] {
        let got = on_threads(3, |pg| {
            // rank r holds [[r, r], [r, 0]] (as bool: r != 0)
            let r = pg.rank() as f64;
            let t = Tensor::from_vec_f64(vec![r, r, r, 0.0], &[2, 2]).to_dtype(dtype);
            let all = pg.all_gather(&t).unwrap();
            all.iter()
                .map(|x| {
                    assert_eq!((x.shape(), x.dtype()), (&[2usize, 2][..], dtype));
                    x.to_vec_f64()
                })
                .collect::<Vec<_>>()
        });
        let want: Vec<Vec<f64>> = (0..3)
            .map(|r| {
                Tensor::from_vec_f64(vec![r as f64, r as f64, r as f64, 0.0], &[2, 2])
                    .to_dtype(dtype)
                    .to_vec_f64()
            })
            .collect();
        assert_eq!(got, vec![want; 3], "{dtype}");
    }
}

#[test]
fn reduce_scatter_gives_rank_r_the_reduced_chunk_r() {
    // rank r holds rows [r+1, 10(r+1)] for i in 0..4 scaled by i: row i = (r+1)·[i, 10i]
    // summed over 2 ranks: row i = 3·[i, 10i]; rank 0 gets rows 0..2, rank 1 rows 2..4
    for dtype in [DType::F32, DType::F64, DType::I64] {
        let got = on_threads(2, |pg| {
            let k = pg.rank() as f64 + 1.0;
            let v: Vec<f64> = (0..4)
                .flat_map(|i| [k * i as f64, k * 10.0 * i as f64])
                .collect();
            let t = Tensor::from_vec_f64(v, &[4, 2]).to_dtype(dtype);
            let mine = pg.reduce_scatter(&t, ReduceOp::Sum).unwrap();
            assert_eq!((mine.shape(), mine.dtype()), (&[2usize, 2][..], dtype));
            mine.to_vec_f64()
        });
        assert_eq!(got[0], vec![0.0, 0.0, 3.0, 30.0], "{dtype}");
        assert_eq!(got[1], vec![6.0, 60.0, 9.0, 90.0], "{dtype}");
    }
    // Max of rank-dependent chunks: rank 1's values everywhere
    let got = on_threads(2, |pg| {
        let t = Tensor::full(&[2], pg.rank() as f32);
        pg.reduce_scatter(&t, ReduceOp::Max)
            .unwrap()
            .to_vec::<f32>()
    });
    assert_eq!(got, vec![vec![1.0], vec![1.0]]);
}

#[test]
fn all_gather_bytes_takes_messages_of_different_lengths() {
    let got = on_threads(3, |pg| {
        let msg = "x".repeat(pg.rank());
        let all = pg.all_gather_bytes(msg.as_bytes()).unwrap();
        let from_1 = pg.broadcast_bytes(b"from rank 1", 1).unwrap();
        (all, from_1)
    });
    for (all, from_1) in got {
        assert_eq!(all, vec![b"".to_vec(), b"x".to_vec(), b"xx".to_vec()]);
        assert_eq!(from_1, b"from rank 1".to_vec());
    }
}

#[test]
fn async_all_reduces_complete_in_issue_order_and_wait_writes_the_result() {
    let got = on_threads(2, |pg| {
        // three async reductions, a blocking one between them, waited in reverse order
        let r = pg.rank() as f32 + 1.0;
        let ts: Vec<Tensor> = (1..=3).map(|i| Tensor::full(&[2], r * i as f32)).collect();
        let w0 = pg.all_reduce_async(&ts[0], ReduceOp::Sum).unwrap();
        let w1 = pg.all_reduce_async(&ts[1], ReduceOp::Max).unwrap();
        // the result of an async op lands at wait(): until then t keeps its own values
        assert_eq!(ts[1].to_vec::<f32>(), vec![r * 2.0; 2]);
        let b = Tensor::full(&[1], r);
        pg.all_reduce(&b, ReduceOp::Product).unwrap();
        let w2 = pg.all_reduce_async(&ts[2], ReduceOp::Min).unwrap();
        // the values at issue time count, not later writes
        ts[2].fill_(100.0);
        w2.wait().unwrap();
        w1.wait().unwrap();
        w0.wait().unwrap();
        (
            ts.iter().map(|t| t.to_vec::<f32>()[0]).collect::<Vec<_>>(),
            b.item(),
        )
    });
    // sum of 1·(1, 2) = 3; max of 2·(1, 2) = 4; min of 3·(1, 2) = 3; product 1·2 = 2
    assert_eq!(got, vec![(vec![3.0, 4.0, 3.0], 2.0); 2]);
}

#[test]
fn work_can_be_waited_on_from_another_thread() {
    let got = on_threads(2, |pg| {
        let t = Tensor::full(&[3], pg.rank() as f32 + 1.0);
        let work = pg.all_reduce_async(&t, ReduceOp::Sum).unwrap();
        std::thread::spawn(move || work.wait())
            .join()
            .unwrap()
            .unwrap();
        t.to_vec::<f32>()
    });
    assert_eq!(got, vec![vec![3.0; 3]; 2]);
}

#[test]
fn non_contiguous_tensors_are_read_through_their_strides() {
    let got = on_threads(2, |pg| {
        // xᵀ of [[0, 1, 2], [3, 4, 5]] (+ rank) is [[0, 3], [1, 4], [2, 5]] (+ rank)
        let x = &Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]) + pg.rank() as f64;
        let t = x.t();
        assert!(!t.is_contiguous());
        pg.all_reduce(&t, ReduceOp::Sum).unwrap();
        (t.shape().to_vec(), t.to_vec::<f32>())
    });
    // 2·[0, 3, 1, 4, 2, 5] + 1
    let want = vec![1.0, 7.0, 3.0, 9.0, 5.0, 11.0];
    assert_eq!(got, vec![(vec![3, 2], want); 2]);
}

#[test]
fn collectives_write_into_parameters_and_are_not_recorded_on_the_tape() {
    let got = on_threads(2, |pg| {
        let w = Tensor::full(&[2], pg.rank() as f32).requires_grad();
        pg.broadcast(&w, 1).unwrap();
        assert!(w.is_leaf() && w.requires_grad_enabled());
        // each rank has its own tape: d(Σ r·w²)/dw = 2·r·w, then averaged over ranks
        let scale = pg.rank() as f64 + 1.0;
        ((&w * &w).sum() * scale).backward();
        let g = w.grad().unwrap();
        pg.all_reduce(&g, ReduceOp::Avg).unwrap();
        (w.to_vec::<f32>(), g.to_vec::<f32>())
    });
    // w = 1 everywhere; grads 2·1·1 = 2 and 2·2·1 = 4, averaged: 3
    assert_eq!(got, vec![(vec![1.0, 1.0], vec![3.0, 3.0]); 2]);
}

#[test]
fn free_functions_use_the_threads_default_group() {
    let got = launch(Backend::Threads(2), |_pg| {
        assert!(distributed::is_initialized());
        let t = Tensor::full(&[1], distributed::rank() as f32 + 1.0);
        distributed::all_reduce(&t, ReduceOp::Sum).unwrap();
        distributed::barrier().unwrap();
        let all = distributed::all_gather(&t).unwrap();
        (distributed::world_size(), t.item(), all.len())
    })
    .unwrap();
    assert_eq!(got, vec![(2, 3.0, 2); 2]);
    assert!(!distributed::is_initialized());
}

#[test]
fn init_process_group_inside_launch_returns_the_ranks_group() {
    let got = launch(Backend::Threads(2), |pg| {
        let again = distributed::init_process_group(Backend::Threads(2)).unwrap();
        let wrong = distributed::init_process_group(Backend::Threads(3));
        (again.same(&pg), wrong.is_err())
    })
    .unwrap();
    assert_eq!(got, vec![(true, true); 2]);
}

#[test]
fn threads_that_call_init_process_group_form_a_group() {
    let handles: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let opts = InitOptions {
                    expected_world_size: Some(2),
                    ..short(20_000)
                };
                let pg = distributed::init_process_group_with(Backend::Threads(2), opts).unwrap();
                let t = Tensor::full(&[1], 1.0);
                distributed::all_reduce(&t, ReduceOp::Sum).unwrap();
                distributed::destroy_process_group();
                (pg.rank(), t.item())
            })
        })
        .collect();
    let mut got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    got.sort_by_key(|g| g.0);
    assert_eq!(got, vec![(0, 2.0), (1, 2.0)]);
}

#[test]
fn a_rank_that_never_joins_is_an_error_at_start() {
    // a group of 5 threads (a world size no other test forms) that only this thread joins
    let start = Instant::now();
    let e = err_text(distributed::init_process_group_with(
        Backend::Threads(5),
        short(300),
    ));
    assert!(
        e.contains("only 1 of 5 threads joined") && e.contains("[1, 2, 3, 4]"),
        "{e}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!distributed::is_initialized());
}

#[test]
fn a_wrong_world_size_is_an_error_at_start() {
    let opts = InitOptions {
        expected_world_size: Some(4),
        ..short(1000)
    };
    let e = err_text(launch_with(Backend::Threads(2), opts, |_| ()));
    assert!(
        e.contains("expected a world size of 4") && e.contains("Threads(2)"),
        "{e}"
    );
}

#[test]
fn mismatched_shapes_are_an_error_naming_the_op_and_every_ranks_shape() {
    let got = on_threads(2, |pg| {
        let t = Tensor::zeros(&[2, 1 + pg.rank()]);
        err_text(pg.all_reduce(&t, ReduceOp::Sum))
    });
    for e in got {
        assert!(e.contains("all_reduce #1"), "{e}");
        assert!(
            e.contains("rank 0 has float32 [2, 1]") && e.contains("rank 1 has float32 [2, 2]"),
            "{e}"
        );
    }
}

#[test]
fn mismatched_dtypes_are_an_error() {
    let got = on_threads(2, |pg| {
        let dtype = if pg.rank() == 0 {
            DType::F32
        } else {
            DType::F64
        };
        err_text(pg.all_gather(&Tensor::zeros_dtype(&[3], dtype)))
    });
    for e in got {
        assert!(
            e.contains("all_gather #1") && e.contains("rank 1 has float64 [3]"),
            "{e}"
        );
    }
}

#[test]
fn ranks_calling_different_collectives_get_an_error_naming_both() {
    let got = on_threads(2, |pg| {
        let t = Tensor::zeros(&[3]);
        let first = if pg.rank() == 0 {
            pg.all_reduce(&t, ReduceOp::Sum)
        } else {
            pg.broadcast(&t, 0)
        };
        // the group is broken from then on: the next collective fails at once
        let start = Instant::now();
        let next = err_text(pg.barrier());
        assert!(start.elapsed() < Duration::from_secs(1));
        (err_text(first), next)
    });
    for (e, next) in got {
        assert!(
            e.contains("rank 0: all_reduce(Sum)") && e.contains("rank 1: broadcast(src=0)"),
            "{e}"
        );
        assert!(
            next.contains("barrier #2") && next.contains("broken"),
            "{next}"
        );
    }
}

#[test]
fn bad_arguments_are_refused_before_communicating() {
    on_threads(2, |pg| {
        let e = err_text(pg.reduce_scatter(&Tensor::zeros(&[3]), ReduceOp::Sum));
        assert!(
            e.contains("reduce_scatter") && e.contains("[3]") && e.contains("2 equal"),
            "{e}"
        );
        let e = err_text(pg.all_reduce(&Tensor::from_values(vec![true], &[1]), ReduceOp::Avg));
        assert!(
            e.contains("all_reduce: ReduceOp::Avg is not defined for bool"),
            "{e}"
        );
        let e = err_text(pg.broadcast(&Tensor::zeros(&[1]), 2));
        assert!(e.contains("broadcast: src 2 is not a rank"), "{e}");
        // none of these counted: the group still works
        pg.barrier().unwrap();
    });
}

#[test]
fn a_rank_that_skips_a_collective_makes_the_others_time_out_naming_it() {
    let done = Barrier::new(3);
    let got = launch_with(Backend::Threads(3), short(2000), |pg| {
        let t = Tensor::ones(&[2]);
        pg.all_reduce(&t, ReduceOp::Sum).unwrap();
        let out = if pg.rank() == 1 {
            None // skips all_reduce #2 (but stays in the group until the others failed)
        } else {
            let start = Instant::now();
            let e = err_text(pg.all_reduce(&t, ReduceOp::Sum));
            Some((e, start.elapsed()))
        };
        done.wait();
        out
    })
    .unwrap();
    for (e, took) in got.into_iter().flatten() {
        assert!(
            e.contains("all_reduce #2") && e.contains("timed out"),
            "{e}"
        );
        assert!(e.contains("ranks [1] did not arrive"), "{e}");
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
            "{took:?}"
        );
    }
}

#[test]
fn a_rank_that_panics_makes_the_others_fail_at_once_and_launch_return_its_message() {
    let start = Instant::now();
    let e = err_text(launch_with(Backend::Threads(3), short(60_000), |pg| {
        let t = Tensor::ones(&[2]);
        pg.all_reduce(&t, ReduceOp::Sum).unwrap();
        if pg.rank() == 2 {
            panic!("rank two fell over");
        }
        // the others wait for rank 2 in all_reduce #2 and must not wait for the 60 s timeout
        let e = err_text(pg.all_reduce(&t, ReduceOp::Sum));
        assert!(
            e.contains("all_reduce #2") && e.contains("rank 2 left the group"),
            "{e}"
        );
        assert!(e.contains("rank two fell over"), "{e}");
        panic!("{e}");
    }));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // the first panic is named first
    assert!(
        e.starts_with("launch: rank 2 panicked: rank two fell over"),
        "{e}"
    );
}

#[test]
fn a_rank_that_returns_early_makes_the_others_fail_naming_it() {
    let start = Instant::now();
    let got = launch_with(Backend::Threads(2), short(60_000), |pg| {
        pg.barrier().unwrap();
        if pg.rank() == 0 {
            return None;
        }
        Some(err_text(pg.barrier()))
    })
    .unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    let e = got[1].as_ref().unwrap();
    assert!(
        e.contains("barrier #2") && e.contains("rank 0 left the group after 1 collectives"),
        "{e}"
    );
    assert!(e.contains("its function returned"), "{e}");
}

#[test]
fn a_pending_work_fails_when_the_group_breaks() {
    let got = launch_with(Backend::Threads(2), short(60_000), |pg| {
        if pg.rank() == 1 {
            panic!("gone");
        }
        let t = Tensor::ones(&[2]);
        let w1 = pg.all_reduce_async(&t, ReduceOp::Sum).unwrap();
        let w2 = pg.all_reduce_async(&t, ReduceOp::Sum);
        let e1 = err_text(w1.wait());
        assert!(
            e1.contains("all_reduce #1") && e1.contains("rank 1 left the group"),
            "{e1}"
        );
        // the second one fails at once too: at issue (the group is broken) or at wait
        let start = Instant::now();
        let e2 = match w2 {
            Ok(w) => err_text(w.wait()),
            Err(e) => e.to_string(),
        };
        assert!(e2.contains("all_reduce #2"), "{e2}");
        assert!(start.elapsed() < Duration::from_secs(1));
    });
    let e = err_text(got);
    // only rank 1 panicked: rank 0's checks held
    assert_eq!(e, "launch: rank 1 panicked: gone");
}

#[test]
fn a_timeout_breaks_the_group_for_later_collectives() {
    let done = Barrier::new(2);
    let got = launch_with(Backend::Threads(2), short(300), |pg| {
        let out = if pg.rank() == 0 {
            let first = err_text(pg.barrier());
            let start = Instant::now();
            let later = err_text(pg.all_reduce(&Tensor::ones(&[1]), ReduceOp::Sum));
            Some((first, later, start.elapsed()))
        } else {
            None
        };
        done.wait();
        out
    })
    .unwrap();
    let (first, later, took) = got[0].clone().unwrap();
    assert!(
        first.contains("barrier #1 timed out on rank 0: ranks [1]"),
        "{first}"
    );
    assert!(
        later.contains("all_reduce #2") && later.contains("broken"),
        "{later}"
    );
    assert!(took < Duration::from_millis(200), "{took:?}");
}

#[test]
fn collectives_need_a_default_group_outside_launch() {
    let e = err_text(distributed::barrier());
    assert!(
        e.contains("barrier: this thread has no default process group"),
        "{e}"
    );
    let msg = common::panic_message(|| {
        distributed::rank();
    });
    assert!(
        msg.contains("rank: this thread has no default process group"),
        "{msg}"
    );
}
