import torch

from train.metrics import classification_metrics, confusion_matrix, expected_calibration_error, fit_temperature

NAMES = ["a", "b", "c"]


def test_confusion_and_scores_by_hand():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    preds = torch.tensor([0, 1, 1, 1, 2, 0])
    assert confusion_matrix(labels, preds, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    result = classification_metrics(torch.nn.functional.one_hot(preds, 3).float(), labels, NAMES)
    assert result["accuracy"] == 4 / 6
    assert result["per_class"]["b"] == {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    f1_a = 2 * 0.5 * 0.5 / 1.0
    f1_c = 2 * 1.0 * 0.5 / 1.5
    assert abs(result["macro_f1"] - (f1_a + 0.8 + f1_c) / 3) < 1e-9


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident():
    labels = torch.tensor([0, 1] * 50)
    sure_and_right = torch.nn.functional.one_hot(labels, 3).float() * 50
    assert expected_calibration_error(sure_and_right, labels) < 1e-6
    wrong = torch.nn.functional.one_hot((labels + 1) % 3, 3).float() * 50
    assert expected_calibration_error(wrong, labels) > 0.99


def test_temperature_scaling_reduces_overconfidence():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (400,))
    clean = torch.nn.functional.one_hot(labels, 3).float() * 2 + torch.randn(400, 3)
    overconfident = clean * 5
    temperature = fit_temperature(overconfident, labels)
    assert 2 < temperature < 8  # undoes most of the x5 sharpening
    assert expected_calibration_error(overconfident, labels, temperature) < expected_calibration_error(
        overconfident, labels
    )


def test_mean_recall_averages_the_classes_that_have_rows():
    labels = torch.tensor([0, 0, 0, 0, 1])
    preds = torch.tensor([0, 0, 0, 0, 0])
    result = classification_metrics(torch.nn.functional.one_hot(preds, 3).float(), labels, NAMES)
    assert result["accuracy"] == 0.8 and result["mean_recall"] == 0.5  # class "c" has no rows: no recall of its own
    own = classification_metrics(torch.nn.functional.one_hot(preds, 3).float(), labels, NAMES, ["a"])
    assert own["mean_recall"] == 1.0
