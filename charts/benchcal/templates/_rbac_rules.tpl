{{/*
RBAC rules, defined once and used by both install modes. Nothing here grants pods/exec or
Secrets: Jobs mount the Secrets they need by reference and the kubelet reads them.
*/}}

{{/* Operator rules on namespaced resources (ClusterRole in cluster mode, Role per namespace otherwise). */}}
{{- define "benchcal.operatorNamespacedRules" -}}
# Application: the CalibrationRun custom resource (kopf patches its finalizer) and its status.
- apiGroups: ["benchcal.dev"]
  resources: ["calibrationruns"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["benchcal.dev"]
  resources: ["calibrationruns/status"]
  verbs: ["get", "patch"]
# Application: child Jobs carry blockOwnerDeletion owner references to their run; clusters
# with the OwnerReferencesPermissionEnforcement admission plugin (OpenShift) require this.
- apiGroups: ["benchcal.dev"]
  resources: ["calibrationruns/finalizers"]
  verbs: ["update"]
# Application: one evaluator Job per checkpoint plus the reducer Job; patch = spec.suspend.
# No delete: Jobs go with their run through owner references (garbage collection).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Application: list a failed Job's pods to read their termination message, and a stuck Job's
# pods to say why they do not run (unschedulable, image pull); never logs, never exec.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list"]
# Application: a Job without pods: its FailedCreate events say why (ServiceAccount missing,
# Pod Security, ResourceQuota, unknown PriorityClass); read by the Job's UID.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list"]
# Application: a Job Kueue holds suspended: its Workload's QuotaReserved/Admitted conditions
# (read only; harmless where Kueue is not installed).
- apiGroups: ["kueue.x-k8s.io"]
  resources: ["workloads"]
  verbs: ["list"]
# Framework (kopf): posts Kubernetes events about handler progress and errors.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/* Operator rules that only a ClusterRole can grant. */}}
{{- define "benchcal.operatorDiscoveryRules" -}}
# Framework (kopf): resource discovery; notices when the CalibrationRun CRD appears or changes.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- end -}}

{{/* Evaluator/reducer Job rules: publish summaries, read the run, write its status. */}}
{{- define "benchcal.jobRules" -}}
# Evaluator Jobs publish per-checkpoint summaries; the reducer collects them.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "create", "update", "patch"]
# The reducer reads its CalibrationRun and writes the classification into its status.
- apiGroups: ["benchcal.dev"]
  resources: ["calibrationruns"]
  verbs: ["get"]
- apiGroups: ["benchcal.dev"]
  resources: ["calibrationruns/status"]
  verbs: ["get", "patch"]
{{- end -}}
