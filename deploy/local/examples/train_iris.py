"""A real (small) training run for the demo: scikit-learn on the Iris data set shipped with
scikit-learn, so it needs no download. Prints the platform's variables it runs with, trains a
random forest, and prints held-out accuracy. Run as a Submarine experiment:

    submarine experiment run -f experiment-iris.yaml --follow
"""

import os
import sys

from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split


def main() -> int:
    print(f"experiment {os.environ.get('SUBMARINE_EXPERIMENT', '(not under Submarine)')}, "
          f"task {os.environ.get('SUBMARINE_TASK_ROLE', '?')}-"
          f"{os.environ.get('SUBMARINE_TASK_INDEX', '?')}", flush=True)
    features, labels = load_iris(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(
        features, labels, test_size=0.3, random_state=7, stratify=labels)
    model = RandomForestClassifier(n_estimators=int(os.environ.get("N_ESTIMATORS", "100")),
                                   random_state=7)
    model.fit(train_x, train_y)
    accuracy = accuracy_score(test_y, model.predict(test_x))
    print(f"trained a random forest on {len(train_x)} samples; "
          f"held-out accuracy {accuracy:.3f}", flush=True)
    return 0 if accuracy > 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
