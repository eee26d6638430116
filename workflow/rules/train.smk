rule train:
    input:
        patches="results/simulate/{dataset}/density_{density}/patches.npz",
    output:
        model="results/train/{dataset}/density_{density}/model.pt",
        history=report(
            "results/train/{dataset}/density_{density}/history.csv",
            caption="../report/history_csv.rst",
            category="Training",
            subcategory="{dataset}",
            labels={
                "dataset": "{dataset}",
                "density": "{density}",
                "figure": "history table",
            },
        ),
        curves=report(
            "results/train/{dataset}/density_{density}/history.png",
            caption="../report/history_png.rst",
            category="Training",
            subcategory="{dataset}",
            labels={
                "dataset": "{dataset}",
                "density": "{density}",
                "figure": "training curves",
            },
        ),
    log:
        log_path("train"),
    benchmark:
        benchmark_path("train"),
    # a job killed by the scheduler (pre-emption, time limit) is resubmitted and resumes from last.ckpt
    retries: 2
    conda:
        "../../envs/train.yaml"
    threads: 4
    params:
        recipe=get_training_recipe,
        seed=get_seed,
        checkpoint_dir="results/train/{dataset}/density_{density}/checkpoints",
    script:
        "../../scripts/train.py"
