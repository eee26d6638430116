rule evaluate:
    input:
        localizations="results/reconstruct/{dataset}/{acquisition}/localizations.csv",
        super_resolution="results/reconstruct/{dataset}/{acquisition}/super_resolution.tif",
        widefield="results/reconstruct/{dataset}/{acquisition}/widefield.tif",
        reconstruction="results/reconstruct/{dataset}/{acquisition}/reconstruction.json",
        drift="results/reconstruct/{dataset}/{acquisition}/drift.csv",
        ground_truth=get_ground_truth,
        drift_truth=get_drift_truth,
    output:
        metrics="results/evaluate/{dataset}/{acquisition}/metrics.json",
        frc="results/evaluate/{dataset}/{acquisition}/frc.csv",
        frc_png=report(
            "results/evaluate/{dataset}/{acquisition}/frc.png",
            caption="../report/frc.rst",
            category="Evaluation",
            subcategory="{dataset}",
            labels={"acquisition": "{acquisition}", "figure": "FRC"},
        ),
        comparison_png=report(
            "results/evaluate/{dataset}/{acquisition}/comparison.png",
            caption="../report/comparison.rst",
            category="Evaluation",
            subcategory="{dataset}",
            labels={"acquisition": "{acquisition}", "figure": "comparison"},
        ),
        matches="results/evaluate/{dataset}/{acquisition}/matches.csv",
        localizations_png=report(
            "results/evaluate/{dataset}/{acquisition}/localizations.png",
            caption="../report/localizations.rst",
            category="Evaluation",
            subcategory="{dataset}",
            labels={"acquisition": "{acquisition}", "figure": "localisations"},
        ),
    log:
        log_path("evaluate"),
    benchmark:
        benchmark_path("evaluate"),
    conda:
        "../../envs/evaluate.yaml"
    params:
        options=get_evaluation_options,
        seed=get_seed,
        info=get_evaluation_info,
    script:
        "../../scripts/evaluate.py"


rule cross_evaluate:
    input:
        frames=get_acquisition_frames,
        model="results/train/{dataset}/density_{density}/model.pt",
        ground_truth=get_cross_ground_truth,
    output:
        metrics="results/evaluate/{dataset}/{acquisition}/models/density_{density}.json",
    log:
        log_path("cross_evaluate"),
    benchmark:
        benchmark_path("cross_evaluate"),
    conda:
        "../../envs/reconstruct.yaml"
    threads: 4
    params:
        pixel_size_nm=get_pixel_size,
        reconstruction=get_reconstruction_options,
        options=get_evaluation_options,
        seed=get_seed,
        info=get_evaluation_info,
    script:
        "../../scripts/cross_evaluate.py"


rule benchmark:
    input:
        metrics=get_benchmark_metrics,
    output:
        table=report(
            "results/evaluate/{dataset}/benchmark.csv",
            caption="../report/benchmark_csv.rst",
            category="Benchmark",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "benchmark table"},
        ),
        figure=report(
            "results/evaluate/{dataset}/benchmark.png",
            caption="../report/benchmark.rst",
            category="Benchmark",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "density benchmark"},
        ),
    log:
        log_path("benchmark"),
    benchmark:
        benchmark_path("benchmark"),
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../../scripts/benchmark.py"


rule training_curves:
    input:
        histories=get_histories,
    output:
        figure=report(
            "results/evaluate/{dataset}/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
            subcategory="{dataset}",
            labels={
                "dataset": "{dataset}",
                "density": "all",
                "figure": "training curves",
            },
        ),
    log:
        log_path("training_curves"),
    benchmark:
        benchmark_path("training_curves"),
    conda:
        "../../envs/evaluate.yaml"
    params:
        labels=get_history_labels,
    script:
        "../../scripts/training_curves.py"


rule summary:
    input:
        get_summary_inputs,
    output:
        table=report(
            "results/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
            labels={"table": "all acquisitions"},
        ),
    log:
        log_path("summary"),
    benchmark:
        benchmark_path("summary"),
    conda:
        "../../envs/evaluate.yaml"
    params:
        entries=get_summary_entries,
    script:
        "../../scripts/summary.py"
