// The shell: top bar, who the viewer is (or the token form when the server asks for one), and the page of
// the location hash.
import type { RefObject } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { type ApiError, toApiError } from './graphql';
import { useTitle } from './hooks';
import { JobPage } from './pages/job';
import { JobsPage } from './pages/jobs';
import { SnapshotPage } from './pages/snapshot';
import { VIEWER, type Viewer } from './queries';
import { jobHref, MAX_SNAPSHOT_ID, parseRoute, type Route } from './route';
import { gql, onUnauthenticated, tokenNeeded, tokens, ViewerContext } from './session';
import { Alert, Field, Loading, Mono, NotFound } from './ui';

type Auth =
  | { state: 'checking' }
  | { state: 'token'; message?: string }
  | { state: 'ready'; viewer: Viewer }
  | { state: 'error'; error: ApiError };

const SCOPE_ORDER = ['admin', 'operator', 'runtime', 'read'];

/**
 * Who the viewer is: asked of the server at the start and on sign-in or out; the token form when it refuses,
 * or at once when the page says a token is needed and there is none (no request answered 401 first).
 */
function useAuth() {
  const [auth, setAuth] = useState<Auth>(() => (tokenNeeded() ? { state: 'token' } : { state: 'checking' }));
  const [signedIn, setSignedIn] = useState(() => tokens.get() !== null);

  const check = useCallback(async () => {
    if (tokenNeeded()) return setAuth({ state: 'token' });
    setAuth({ state: 'checking' });
    try {
      const { viewer } = await gql<{ viewer: Viewer }>(VIEWER);
      setAuth({ state: 'ready', viewer });
    } catch (thrown) {
      const error = toApiError(thrown);
      // UNAUTHENTICATED: the listener below shows the form.
      if (error.code !== 'UNAUTHENTICATED') setAuth({ state: 'error', error });
    }
  }, []);

  useEffect(
    () =>
      onUnauthenticated((error) => {
        const had = tokens.get() !== null;
        tokens.clear();
        setSignedIn(false);
        setAuth({
          state: 'token',
          ...(had ? { message: `The server did not accept the token (${error.message}).` } : {}),
        });
      }),
    [],
  );
  useEffect(() => {
    void check();
  }, [check]);

  const signIn = (token: string) => {
    tokens.set(token);
    setSignedIn(true);
    void check();
  };
  const signOut = () => {
    tokens.clear();
    setSignedIn(false);
    void check();
  };
  return { auth, signedIn, check, signIn, signOut };
}

/** The location hash's route. A new one starts at the page's top, with the focus (for screen readers) on `main`. */
function useRoute(main: RefObject<HTMLElement | null>): Route {
  const [route, setRoute] = useState<Route>(() => parseRoute(window.location.hash));
  const firstRoute = useRef(true);
  useEffect(() => {
    const changed = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  useEffect(() => {
    if (firstRoute.current) {
      firstRoute.current = false;
      return;
    }
    window.scrollTo(0, 0);
    main.current?.focus({ preventScroll: true });
  }, [route]);
  return route;
}

export function App() {
  const main = useRef<HTMLElement>(null);
  const { auth, signedIn, check, signIn, signOut } = useAuth();
  const route = useRoute(main);
  const viewer = auth.state === 'ready' ? auth.viewer : null;
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(event) => {
          event.preventDefault();
          main.current?.focus();
        }}
      >
        Skip to content
      </a>
      <TopBar viewer={viewer} route={route} onSignOut={signedIn && auth.state !== 'token' ? signOut : null} />
      <main id="main" ref={main} tabIndex={-1}>
        {auth.state === 'checking' && <Loading what="the console" />}
        {auth.state === 'token' && <TokenForm message={auth.message} onToken={signIn} />}
        {auth.state === 'error' && (
          <>
            <Alert error={auth.error} />
            <button type="button" onClick={() => void check()}>
              Try again
            </button>
          </>
        )}
        {viewer && (
          <ViewerContext.Provider value={viewer}>
            <Page key={JSON.stringify(route)} route={route} />
          </ViewerContext.Provider>
        )}
      </main>
    </>
  );
}

/** The brand, the main navigation and who is signed in (once the server knows the viewer), and Sign out. */
function TopBar(props: { viewer: Viewer | null; route: Route; onSignOut: (() => void) | null }) {
  const { viewer, route } = props;
  return (
    <header class="topbar">
      <a class="brand" href="#/">
        snapcat
      </a>
      {viewer && (
        <nav aria-label="Main">
          <a href="#/" aria-current={route.page === 'jobs' ? 'page' : undefined}>
            Jobs
          </a>
          <a href="/graphql">GraphiQL</a>
        </nav>
      )}
      <div class="who">
        {viewer && (
          <span class="viewer" data-testid="viewer">
            <span class="viewer-name">{viewer.name}</span>{' '}
            <span class="muted small">
              {SCOPE_ORDER.find((scope) => viewer.scopes.includes(scope)) ?? 'no scope'}
              {viewer.authenticationEnabled ? '' : ' · authentication off'}
            </span>
          </span>
        )}
        {props.onSignOut && (
          <button type="button" data-testid="sign-out" onClick={props.onSignOut}>
            Sign out
          </button>
        )}
      </div>
    </header>
  );
}

function Page({ route }: { route: Route }) {
  useTitle(
    route.page === 'jobs'
      ? 'Jobs'
      : route.page === 'job'
        ? `Job ${route.jobId}`
        : route.page === 'snapshot'
          ? `Snapshot ${route.snapshotId} of ${route.jobId}`
          : route.page === 'bad-job-id'
            ? 'Not a job id'
            : route.page === 'bad-snapshot-id'
              ? 'No such snapshot'
              : 'Not found',
  );
  switch (route.page) {
    case 'jobs':
      return <JobsPage />;
    case 'job':
      return <JobPage jobId={route.jobId} />;
    case 'snapshot':
      return <SnapshotPage jobId={route.jobId} snapshotId={route.snapshotId} />;
    case 'bad-job-id':
      return (
        <NotFound title="Not a job id" focusable>
          <Mono>{route.jobId}</Mono> is not a job id: 32 hex characters (a Flink JobID).
        </NotFound>
      );
    case 'bad-snapshot-id':
      return (
        <NotFound title="No such snapshot" focusable>
          <Mono>{route.snapshotId}</Mono> is not a snapshot id (the greatest is {MAX_SNAPSHOT_ID}). Back to{' '}
          <a href={jobHref(route.jobId)}>job {route.jobId}</a>, or
        </NotFound>
      );
    default:
      return <NotFound title="Not found">Nothing here.</NotFound>;
  }
}

function TokenForm({ message, onToken }: { message?: string | undefined; onToken(token: string): void }) {
  const [token, setToken] = useState('');
  return (
    <form
      class="panel token-form"
      data-testid="token-form"
      aria-labelledby="token-title"
      onSubmit={(event) => {
        event.preventDefault();
        if (token.trim() !== '') onToken(token.trim());
      }}
    >
      <h1 id="token-title">Sign in</h1>
      <p>
        This snapcat asks for a token. Paste one an administrator made with <code>snapcat token create</code>.
        It stays in this browser tab only, and goes to the server as a bearer token.
      </p>
      {message && (
        <div class="alert" role="alert">
          <p>{message}</p>
        </div>
      )}
      <Field label="Access token">
        <input
          type="password"
          name="token"
          autoComplete="off"
          spellcheck={false}
          required
          autoFocus
          value={token}
          onInput={(event) => setToken(event.currentTarget.value)}
        />
      </Field>
      <button type="submit" class="primary">
        Sign in
      </button>
    </form>
  );
}
