"""DLT + RANSAC triangulation for multiview bootstrapping (Simon et al., arXiv:1704.07809)."""
import numpy as np
import pytest

from mmext.pose.synthetic_hands import camera_ring
from mmext.pose.triangulation import project, triangulate_dlt, triangulate_ransac

REGISTRY_SCOPE = 'mmpose'  # see conftest._default_registry_scope


@pytest.fixture
def rig():
    rng = np.random.default_rng(1)
    cams = camera_ring(6, rng, 128)
    X = rng.normal(scale=0.05, size=(21, 3))
    return cams, X, project(X, cams)


def test_dlt_recovers_points_from_exact_projections(rig):
    cams, X, x = rig
    np.testing.assert_allclose(triangulate_dlt(x, cams), X, atol=1e-6)
    np.testing.assert_allclose(triangulate_dlt(x[:2], cams[:2]), X, atol=1e-6)  # 2 views suffice
    # one point as (V, 2); scaling a camera matrix changes nothing
    np.testing.assert_allclose(triangulate_dlt(x[:, 0], cams * np.arange(1, 7)[:, None, None])[0],
                               X[0], atol=1e-6)


def test_dlt_from_noisy_projections_within_stated_tolerance(rig):
    # 1 px Gaussian noise, 6 views, cameras ~0.45 m away with f ~ 170 px: 1 px ~ 2.6 mm at the
    # hand, averaged over 6 views -> errors of a few mm; we state 1 cm as the tolerance.
    cams, X, x = rig
    noisy = x + np.random.default_rng(2).normal(scale=1.0, size=x.shape)
    err = np.linalg.norm(triangulate_dlt(noisy, cams) - X, axis=-1)
    assert err.max() < 0.01 and err.mean() < 0.005
    # and reprojection errors stay around the noise level
    assert np.linalg.norm(project(triangulate_dlt(noisy, cams), cams) - noisy, axis=-1).mean() < 1.5


def test_ransac_rejects_a_corrupted_view(rig):
    cams, X, x = rig
    bad = x.copy()
    bad[3] += np.array([25.0, -18.0])  # view 3 is wrong for every keypoint
    scores = np.full(x.shape[:2], 0.9)
    plain = triangulate_dlt(bad, cams)
    assert np.linalg.norm(plain - X, axis=-1).mean() > 5e-3  # the plain DLT is pulled away
    r = triangulate_ransac(bad, scores, cams, inlier_thr=4.0)
    assert not r.inliers[3].any() and r.inliers[[0, 1, 2, 4, 5]].all()
    np.testing.assert_allclose(r.points3d, X, atol=1e-6)
    np.testing.assert_allclose(r.score, 5 * 0.9)  # sum of the inlier confidences
    assert (r.reproj_error[3] > 20).all() and (r.reproj_error[[0, 1, 2, 4, 5]] < 1e-6).all()


def test_ransac_drops_low_confidence_detections_and_keeps_nan_for_unseen(rig):
    cams, X, x = rig
    scores = np.full(x.shape[:2], 0.9)
    scores[:, 0] = 0.1            # keypoint 0 under lambda everywhere -> not triangulated
    scores[1:, 1] = 0.1           # keypoint 1 seen by one view only -> not triangulated
    x = x.copy()
    x[:, 0] = np.nan              # NaN is allowed where the score is under lambda
    scores[4, 2] = 0.19           # keypoint 2: one view dropped, the others suffice
    r = triangulate_ransac(x, scores, cams)
    assert np.isnan(r.points3d[:2]).all() and r.score[0] == 0 and not r.inliers[:, 1].any()
    np.testing.assert_allclose(r.points3d[2:], X[2:], atol=1e-6)
    assert not r.inliers[4, 2] and r.score[2] == pytest.approx(5 * 0.9)


def test_bad_inputs_raise_clear_errors(rig):
    cams, X, x = rig
    s = np.ones(x.shape[:2])
    with pytest.raises(ValueError, match='at least 2 views'):
        triangulate_dlt(x[:1], cams[:1])
    with pytest.raises(ValueError, match='at least 2 views'):
        triangulate_ransac(x[:1], s[:1], cams[:1])
    with pytest.raises(ValueError, match='3x4'):
        triangulate_dlt(x, cams[:, :, :3])
    with pytest.raises(ValueError, match='3x4'):
        triangulate_ransac(x, s, cams.reshape(6, 12))
    nan = x.copy()
    nan[2, 5, 1] = np.nan
    with pytest.raises(ValueError, match='view 2, keypoint 5'):
        triangulate_dlt(nan, cams)
    with pytest.raises(ValueError, match='view 2, keypoint 5'):
        triangulate_ransac(nan, s, cams)
    with pytest.raises(ValueError, match='scores'):
        triangulate_ransac(x, s[:, :3], cams)
    with pytest.raises(ValueError, match=r'points2d must be \(V=6'):
        triangulate_dlt(x[:4], cams)
    with pytest.raises(ValueError, match='NaN or inf'):
        triangulate_dlt(x, np.where(np.eye(3, 4, dtype=bool), np.nan, cams))
