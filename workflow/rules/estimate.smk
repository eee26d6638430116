rule estimate_conditions:
    input:
        frames=get_estimate_inputs,
    output:
        json="results/estimate/{dataset}/conditions.json",
        csv=report(
            "results/estimate/{dataset}/conditions.csv",
            caption="../report/conditions.rst",
            category="Estimated conditions",
            labels={"dataset": "{dataset}", "figure": "estimates vs hand-typed"},
        ),
        photon_transfer=report(
            "results/estimate/{dataset}/photon_transfer.png",
            caption="../report/photon_transfer.rst",
            category="Estimated conditions",
            labels={"dataset": "{dataset}", "figure": "photon transfer"},
        ),
        spots=report(
            "results/estimate/{dataset}/spots.png",
            caption="../report/spots.rst",
            category="Estimated conditions",
            labels={"dataset": "{dataset}", "figure": "spots"},
        ),
    log:
        log_path("estimate_conditions"),
    benchmark:
        benchmark_path("estimate_conditions"),
    conda:
        "../../envs/estimate.yaml"
    params:
        options=get_estimate_options,
        dataset=get_dataset,
    script:
        "../../scripts/estimate_conditions.py"
