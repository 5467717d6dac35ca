//! Wiring for `serve`: certificate, the shared `Runtime` (cluster view,
//! admission channel, tasks), the drift and tenancy sides, webhook and admin
//! listeners, and an orderly shutdown. Each subsystem exposes a router or a
//! spawn.

use std::sync::{Arc, atomic::Ordering};

use anyhow::Context;
use axum_server::{Handle, tls_rustls::RustlsConfig};
use prometheus::Registry;

use crate::{
    admin::{self, Readiness},
    config::ServeArgs,
    drain, drift,
    metrics::AdmissionMetrics,
    pin::{
        pullsecret::Keyring,
        serve::{self, Pinner},
    },
    policy::Policy,
    runtime::Runtime,
    server,
    tasks::Tasks,
    tenancy::{self, metrics::TenancyMetrics, watch::TenancyWatch},
    tls::{self, CertWatcher, TlsMetrics},
    webhook,
};

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    args.validate().map_err(anyhow::Error::msg)?;
    let ServeArgs {
        listen,
        admin_listen,
        tls_cert,
        tls_key,
        policy,
        kubeconfig,
        request_timeout,
        max_in_flight,
        max_connections,
        header_read_timeout,
        idle_timeout,
        cert_reload_interval,
        shutdown_delay,
        shutdown_grace,
        drift: settings,
    } = args;
    let policy = Arc::new(match policy {
        Some(path) => Policy::load(&path)?,
        None => Policy::default(),
    });
    // Validate the certificate before binding anything.
    let loaded = tls::load(&tls_cert, &tls_key)?;
    let registry = Registry::new();
    let readiness = Arc::new(Readiness::default());
    let (tasks, mut exits) = Tasks::new(&registry)?;
    let rustls = RustlsConfig::from_config(loaded.config.clone());
    let certificates = CertWatcher::new(&loaded, rustls.clone(), TlsMetrics::new(&registry)?)
        .with_interval(cert_reload_interval);
    tasks.spawn("certificate-watcher", certificates.run());
    readiness.certificate_loaded.store(true, Ordering::Release);

    let client = kube_client(kubeconfig.as_deref()).await?;
    let (runtime, from_admission) =
        Runtime::start(policy, client, registry, tasks, &readiness).await?;
    let metrics = AdmissionMetrics::new(&runtime.registry)?;
    let pinner = Pinner::build(
        &runtime.policy,
        &runtime.view,
        Some(runtime.client.clone()),
        Keyring::default(),
        metrics.clone(),
        &runtime.registry,
    )?;
    let cluster = settings.cluster_name.clone();
    let alerts = drift::start(&runtime, from_admission, settings)?;
    tenancy::watch::spawn(
        TenancyWatch {
            client: runtime.client.clone(),
            policy: runtime.policy.clone(),
            view: runtime.view.clone(),
            alerts,
            metrics: TenancyMetrics::new(&runtime.registry)?,
            cluster,
        },
        &runtime.tasks,
    );
    let guard = runtime.guard(metrics);
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("--listen {listen}: cannot bind"))?;
    listener.set_nonblocking(true)?;
    let admin = tokio::net::TcpListener::bind(admin_listen)
        .await
        .with_context(|| format!("--admin-listen {admin_listen}: cannot bind"))?;
    let handle: Handle<std::net::SocketAddr> = Handle::new();
    let limit = tls::ConnectionLimit::new(max_connections, &runtime.registry)?;
    let clocks = tls::Clocks {
        header_read: header_read_timeout,
        idle: idle_timeout,
    };
    let webhook = tls::server(listener, rustls, clocks, limit)?.handle(handle.clone());
    let shed_metrics = guard.metrics.clone();
    let app = server::router(guard, request_timeout).merge(serve::router(pinner));
    let app = webhook::shed(app, max_in_flight, &shed_metrics);
    let app = drain::layer(app, readiness.draining.clone());
    let webhook = tokio::spawn(webhook.serve(app.into_make_service()));
    readiness.listener_bound.store(true, Ordering::Release);
    tracing::info!(%listen, %admin_listen, "serving");

    let admin_app = admin::router(readiness.clone(), runtime.registry.clone());
    let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = tokio::spawn(async move {
        let stop = async move {
            let _ = admin_stopped.await;
        };
        axum::serve(admin, admin_app)
            .with_graceful_shutdown(stop)
            .await
    });

    let stopped = tokio::select! {
        () = shutdown_signal() => None,
        exit = exits.next() => Some(exit),
    };
    if let Some(exit) = &stopped {
        // Not ready at once; then the same drain as a SIGTERM, and an error
        // exit so the kubelet restarts the Pod.
        let _ = readiness.stopped_task.set(exit.task);
    }
    runtime.tasks.shutdown();
    tracing::info!(delay = ?shutdown_delay, grace = ?shutdown_grace, "shutting down: draining in-flight reviews");
    readiness.draining.start();
    tokio::time::sleep(shutdown_delay).await;
    handle.graceful_shutdown(Some(shutdown_grace));
    let served = webhook.await;
    // What the last reviews admitted is written before the process ends.
    runtime.tasks.drained();
    served??;
    let _ = admin_stop.send(());
    admin.await??;
    tracing::info!("stopped");
    match stopped {
        Some(exit) => Err(anyhow::anyhow!("{exit}")),
        None => Ok(()),
    }
}

pub async fn kube_client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("--kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig and not in a cluster")?,
    };
    Ok(kube::Client::try_from(config)?)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
